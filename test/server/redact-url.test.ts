import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {redactUrl} from '../../src/server/store/store.js'

describe('redactUrl: store locations in messages, logs and --json', () => {
  it('drops a password from the user part and from the query, keeps the rest', () => {
    assert.equal(redactUrl('postgresql://u:secret@h:5432/db?application_name=x&password=p2'), 'postgresql://u@h:5432/db?application_name=x')
    assert.equal(redactUrl('postgres://u@h/db?sslpassword=zz'), 'postgres://u@h/db')
    assert.equal(redactUrl('sqlite:///srv/basic_auth.db'), 'sqlite:///srv/basic_auth.db')
  })

  it('shows no part of a URL it cannot read (the password could be anywhere in it)', () => {
    for (const url of ['postgresql://u:ab/cd@host/db', 'postgresql://u:p#w@host/db']) {
      const shown = redactUrl(url)
      assert.equal(shown, 'postgresql://(a URL that cannot be read, not shown)')
    }
  })

  it('leaves a file path as it is', () => {
    assert.equal(redactUrl('auth.json'), 'auth.json')
    assert.equal(redactUrl('/var/lib/mlflowctl/auth.json'), '/var/lib/mlflowctl/auth.json')
  })
})
