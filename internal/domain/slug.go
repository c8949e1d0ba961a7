package domain

import "regexp"

// SlugPattern is the form of every organisation's slug: a DNS label (the
// database checks the same), which an operator may give at bootstrap.
var SlugPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// OrgSlugPattern is the form of a slug a customer chooses (sign-up, a new
// organisation): a DNS label of 3 to 30 characters. A tenant is served at
// <tenant>-<slug>.<domain> and a tenant's name is at most 32 characters,
// so every tenant's label stays a DNS label (at most 63); three at least
// leaves the shortest names to nobody in particular.
var OrgSlugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,28}[a-z0-9]$`)

// OrgSlugProblem says what is wrong with a slug a customer chose, or ""
// when nothing is.
func OrgSlugProblem(slug string) string {
	if !OrgSlugPattern.MatchString(slug) {
		return "3 to 30 of a-z, 0-9 and '-', not at either end (it names the organization in its tenants' hostnames)"
	}
	return ""
}
