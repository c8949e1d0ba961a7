// Command loadgen drives a mixed workload against the control plane's
// public API at any base URL and ends with a table per route (count, p50,
// p99, errors by code):
//
//	go run ./cmd/loadgen -url http://127.0.0.1:8080 -duration 30s -concurrency 20
//	go run ./cmd/loadgen -rate 50 -mix create=1,get=4,list=3,events=1,suspend=1
//	go run ./cmd/loadgen -url http://10.0.0.1:8080,http://10.0.0.2:8080 -retries 3
//
// It signs in as -email (the dev owner by default; the password from
// -password or LOADGEN_PASSWORD) and works in the first organisation.
// Progress goes to standard error once a second; the table to standard
// output. A mutation answered 503 or not at all is sent again with the
// same Idempotency-Key (-retries), to the next URL. It exits 1 when any
// answer was a 5xx or had no answer at all, or when a key was answered with
// two different effects.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/intelliauth/controlplane/internal/loadgen"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	o := loadgen.Options{Progress: os.Stderr}
	urls := fs.String("url", "http://127.0.0.1:8080", "the API's base URL, or several replicas' separated by commas (requests go to each in turn)")
	fs.IntVar(&o.Retries, "retries", 3, "times a mutation answered 503 or not at all is sent again with the same Idempotency-Key (to the next URL)")
	fs.StringVar(&o.Email, "email", "owner@acme.test", "who signs in")
	password := fs.String("password", "", "their password (default: $LOADGEN_PASSWORD, else the dev owner's)")
	fs.DurationVar(&o.Duration, "duration", 30*time.Second, "how long to run")
	fs.IntVar(&o.Requests, "requests", 0, "stop after this many requests (0: run for -duration)")
	fs.IntVar(&o.Concurrency, "concurrency", 10, "requests in flight at most")
	fs.Float64Var(&o.Rate, "rate", 0, "requests per second (0: as fast as -concurrency allows)")
	mix := fs.String("mix", "create=1,get=4,list=3,events=1,suspend=1", "operations and their weights")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.BaseURLs = strings.Split(*urls, ",")
	var err error
	if o.Mix, err = loadgen.ParseMix(*mix); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 2
	}
	o.Password = *password
	if o.Password == "" {
		o.Password = os.Getenv("LOADGEN_PASSWORD")
	}
	if o.Password == "" {
		o.Password = "intelliauth-dev-password"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := loadgen.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 1
	}
	rep.WriteTable(os.Stdout)
	if twice := rep.Twice(); len(twice) > 0 {
		fmt.Fprintf(os.Stderr, "loadgen: %d Idempotency-Keys were answered with two different effects: %v\n", len(twice), twice)
		return 1
	}
	for _, s := range rep.Stats() {
		for code := range s.Errors {
			if code == "NETWORK" || strings.HasPrefix(code, "5") || code == "INTERNAL_ERROR" || code == "UNAVAILABLE" {
				return 1
			}
		}
	}
	return 0
}
