-- One operation per Temporal update id and tenant, for good: a retried
-- request that reaches a later run of the tenant's workflow (after it
-- continued as new) finds the operation its first attempt began, and is
-- answered with it instead of running again.
CREATE UNIQUE INDEX operations_update_key ON operations (tenant_id, update_id) WHERE update_id <> '';
