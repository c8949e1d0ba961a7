// Package intelliauth is the Go client of the IntelliAuth control plane's
// API (/api/v1).
//
// Every operation of the API is a method of [Client], generated from the
// contract the API serves (openapi.json): the methods of the raw client
// answer the *http.Response, those named …WithResponse answer it decoded by
// status. [Data] and [List] decode a raw answer's envelope, or turn an error
// answer into an [*APIError]; [All] walks every page of a list.
//
//	c, err := intelliauth.New("https://cp.example.com", intelliauth.WithToken(os.Getenv("INTELLIAUTH_TOKEN")))
//	...
//	t, err := intelliauth.Data[intelliauth.Tenant](c.GetTenant(ctx, orgID, tenantID))
//
// The client retries what is safe to retry: answers 429, 502, 503 and 504
// and requests that got no answer, after the answer's Retry-After or a
// growing pause ([WithRetry]). Every mutation carries an Idempotency-Key, a
// random one unless the call gives its own ([WithIdempotencyKey]), and its
// retries send the same key, so the API does it once.
//
// Tenants change state through sagas that run after the answer:
// [Client.WaitForOperation] and [Client.WaitForTenant] poll until they
// settle, and report a saga that failed or is stuck as an [*OperationError].
package intelliauth
