package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"-run", "mlp/(grad|sgd)$", "-rounds", "1"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| mlp/grad |", "| mlp/sgd |", "1.00x"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "cnn/") {
		t.Errorf("unselected workloads printed:\n%s", out.String())
	}
	for _, bad := range [][]string{{"-rounds", "0"}, {"-run", "("}} {
		if err := run(bad, &out); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
