import assert from 'node:assert/strict'
import {test} from 'node:test'

import {parseCsv, readUsersCsv, writeUsersCsv} from '../../src/policy/users-csv.js'

test('users CSV: quoting, line numbers, optional password; export reads back', () => {
  assert.deepEqual(parseCsv('a,"b ""c"", d"\r\n\n"x\ny",z\n'), [
    {fields: ['a', 'b "c", d'], line: 1},
    {fields: ['x\ny', 'z'], line: 3},
  ])
  const users = readUsersCsv('username,admin,password\nalice,true,\nbob,no,a-long-password\n', 'u.csv')
  assert.deepEqual(users, [
    {admin: true, line: 2, username: 'alice'},
    {admin: false, line: 3, password: 'a-long-password', username: 'bob'},
  ])
  const csv = writeUsersCsv([
    {admin: false, username: 'zed, jr'},
    {admin: true, username: 'amy'},
  ])
  assert.equal(csv, 'username,admin\namy,true\n"zed, jr",false\n')
  assert.deepEqual(
    readUsersCsv(csv, 'u.csv').map((user) => [user.username, user.admin]),
    [
      ['amy', true],
      ['zed, jr', false],
    ],
  )
})

test('users CSV: every problem with its line, before anything is sent', () => {
  assert.throws(() => readUsersCsv('name,admin\n', 'u.csv'), /u\.csv:1: the header must be username,admin/)
  assert.throws(
    () => readUsersCsv('username,admin\nalice,maybe\nbob\nalice,false\n', 'u.csv'),
    /u\.csv has 3 problems:\nu\.csv:2: admin must be true or false, not "maybe"\nu\.csv:3: 1 field, expected 2\nu\.csv:4: user alice is listed twice \(also on line 2\)/,
  )
})
