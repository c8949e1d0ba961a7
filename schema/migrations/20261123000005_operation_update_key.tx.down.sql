DROP INDEX operations_update_key;
