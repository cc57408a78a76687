/** An audit record of an admin's grant, as serve writes one, for tests of the audit log itself. */
import {type AuditEvent} from '../../src/server/audit.js'

export const GRANT_CHANGE: AuditEvent = {
  client: '10.0.0.1',
  event: 'change',
  method: 'POST',
  operation: 'grants/grant',
  path: '/api/3.0/mlflow/users/permissions/grant',
  target: {resource_id: '1', resource_type: 'experiment', username: 'alice'},
  user: 'admin',
  values: {permission: 'READ'},
}
