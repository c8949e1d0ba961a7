package domain

import "regexp"

// RegionPattern is a region's name: a DNS label of 1 to 20 characters that
// starts with a letter, since it is a label of its tenants' hostnames
// (<tenant>-<org>.<region>.<CP_DOMAIN_BASE>) and part of a task queue's
// name.
var RegionPattern = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$`)

// ValidRegion reports whether name can name a region.
func ValidRegion(name string) bool { return RegionPattern.MatchString(name) }

// RegionRule says what a region's name must be.
const RegionRule = "1 to 20 of a-z, 0-9 and '-', starting with a letter and not ending with '-'"
