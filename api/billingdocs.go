package api

import (
	"github.com/intelliauth/controlplane/internal/billing"
)

// billingRouteDocs are billing's entries of routeDocs.
func billingRouteDocs(org string) map[string]doc {
	off := "Answers 404 when billing is off (no CP_STRIPE_SECRET_KEY)."
	return map[string]doc{
		"GET " + org + "/billing": {id: "getBilling", summary: "The organization's plan, billing status, card, current period and next invoice",
			desc: "Owners and admins. The card, the current period and the next invoice's estimate (Stripe's invoice preview) are read from Stripe; " +
				"when Stripe does not answer the route answers 503. " + off,
			data: billingView{}},
		"POST " + org + "/billing/checkout": {id: "startCheckout", summary: "A Stripe Checkout session for a paid plan",
			desc: "Owners, with a recent authentication. The organization's Stripe customer is made on first need. The answer's url is Stripe's hosted checkout: " +
				"once paid, Stripe's checkout.session.completed event moves the organization to the plan (through its billing workflow, audited as billing.subscribed). " +
				"A retry with the same Idempotency-Key is the same session. An organization with a running subscription manages it in the portal (409). " +
				"Audited as billing.checkout_started. " + off,
			body: checkoutRequest{}, data: billingURL{}, errs: []errorResponse{errReauth}},
		"POST " + org + "/billing/portal": {id: "openBillingPortal", summary: "A session of Stripe's customer portal: cards, invoices, cancellation",
			desc: "Owners, with a recent authentication. Audited as billing.portal_opened. " + off,
			data: billingURL{}, errs: []errorResponse{errReauth}},
		"GET " + org + "/invoices": {id: "listInvoices", summary: "The organization's invoices, newest first, from Stripe",
			desc: "Owners and admins. Each links to Stripe's hosted invoice page. " + off,
			data: billing.Invoice{}, list: true, query: listParams()},
		"POST " + stripeWebhookPath: {id: "stripeWebhook", summary: "Stripe's events (the webhook endpoint)",
			desc: "No session: the Stripe-Signature header is verified with CP_STRIPE_WEBHOOK_SECRET within Stripe's tolerance (5 minutes); " +
				"a forged or stale signature is 400 and nothing is stored. The body is at most 64 KiB. " +
				"An event is stored once (a duplicate delivery answers duplicate: true) and handed to its organization's billing workflow, which applies it once and in order; " +
				"503 when that workflow cannot be reached: Stripe retries, and the retry hands over the stored event again. " +
				"Events of other types, or about no organization of this installation, are acknowledged and dropped. " + off,
			data: webhookAnswer{}, errs: []errorResponse{errNotFound}},
	}
}
