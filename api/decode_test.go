package api

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/intelliauth/controlplane/internal/domain"
)

func TestDuplicateKeysAreFoundInEveryObjectButNotAcrossObjects(t *testing.T) {
	tests := []struct {
		body string
		want []string
	}{
		{`{"email":"a@b.test","role":"viewer"}`, nil},
		{`{"role":"viewer","email":"a@b.test","role":"owner"}`, []string{"role"}},
		{`{"a":{"x":1,"x":2},"b":{"x":1},"x":[{"x":1,"y":[1,{"x":2}]}]}`, []string{"x"}},
		{`{"a":1,"b":{"a":1},"c":[{"a":1},{"a":1}]}`, nil},
		{`{"a":[],"a":{}}`, []string{"a"}},
		{`["a","a"]`, nil},
		{`{"role":"viewer","ROLE":"admin"}`, []string{"ROLE"}},
	}
	for _, tt := range tests {
		var got []string
		for _, fe := range duplicateKeys([]byte(tt.body)) {
			got = append(got, fe.Field)
			if !strings.HasPrefix(fe.Message, "appears more than once") {
				t.Errorf("%s: message %q", tt.body, fe.Message)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: duplicates %v, want %v", tt.body, got, tt.want)
		}
	}
}

func TestRepeatedKeysKeysInAnotherCaseAndNULCharactersAreRefused(t *testing.T) {
	s := decodeServer()
	for _, tc := range []struct {
		name, body, field string
	}{
		{"a key twice", `{"email":"a@b.test","role":"viewer","role":"owner"}`, "role"},
		{"a case variant of a known key", `{"email":"a@b.test","role":"viewer","ROLE":"admin"}`, "ROLE"},
		{"a known key in another case alone", `{"email":"a@b.test","Role":"admin"}`, "Role"},
		{"a NUL in a value", `{"email":"a\u0000@b.test","role":"viewer"}`, "email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/t/decode", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := s.App().Test(req)
			if err != nil {
				t.Fatal(err)
			}
			var body errorBody
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 400 || body.Error.Code != domain.CodeBadRequest || len(body.Error.FieldErrors) != 1 || body.Error.FieldErrors[0].Field != tc.field {
				t.Fatalf("%d %+v", resp.StatusCode, body.Error)
			}
		})
	}
}
