package password

import "testing"

func TestHashThenVerify(t *testing.T) {
	h, err := Hash("correct horse battery staple", Default)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pw   string
		want bool
	}{
		{"the same password matches", "correct horse battery staple", true},
		{"another password does not match", "correct horse battery stapler", false},
		{"an empty password does not match", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := Verify(tt.pw, h)
			if err != nil || ok != tt.want {
				t.Fatalf("Verify = %v, %v; want %v", ok, err, tt.want)
			}
		})
	}
}

func TestTwoHashesOfOnePasswordDiffer(t *testing.T) {
	a, _ := Hash("same", Default)
	b, _ := Hash("same", Default)
	if a == b {
		t.Fatal("hashes share a salt")
	}
}

func TestVerifyRejectsMalformedHashes(t *testing.T) {
	for _, h := range []string{"", "plain", "$argon2i$v=19$m=1,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=x$AAAA$AAAA", "$argon2id$v=19$m=1,t=1,p=1$!!$AAAA"} {
		if _, err := Verify("pw", h); err == nil {
			t.Errorf("Verify(%q) accepted a malformed hash", h)
		}
	}
}

// BenchmarkVerify is the cost of one sign-in's password check.
func BenchmarkVerify(b *testing.B) {
	h, err := Hash("correct horse battery staple", Default)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, _ := Verify("correct horse battery staple", h); !ok {
			b.Fatal("no match")
		}
	}
}
