package domain

import "testing"

func TestADerivedIDIsTheSameForTheSamePartsAndValid(t *testing.T) {
	a := DerivedID(PrefixOperation, "tenant/org_1/key", "suspend/k")
	if a != DerivedID(PrefixOperation, "tenant/org_1/key", "suspend/k") {
		t.Fatal("two derivations of the same parts differ")
	}
	if !ValidID(PrefixOperation, a) {
		t.Fatalf("%s is not a valid operation id", a)
	}
	for _, other := range []string{
		DerivedID(PrefixOperation, "tenant/org_1/key", "suspend/l"),
		DerivedID(PrefixOperation, "tenant/org_1/keysuspend/", "k"),
		DerivedID(PrefixOperation, "tenant/org_1/key/suspend/k"),
	} {
		if other == a {
			t.Errorf("other parts derive the same id %s", a)
		}
	}
}
