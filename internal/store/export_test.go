package store

// NotEnded is notEnded, for the tests of package store_test.
var NotEnded = notEnded
