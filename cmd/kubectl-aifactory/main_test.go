package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestHelpAndBadInput(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), nil, &out); err != nil || !strings.Contains(out.String(), "kubectl aifactory why TRAININGJOB") {
		t.Fatalf("help: %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"status", "--no-such-flag"}, &out); err == nil || !strings.Contains(err.Error(), "no-such-flag") {
		t.Fatalf("an unknown flag must be named: %v", err)
	}
}
