package nonfinite_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/curvopt/curvopt/hessian/spectrum"
	"github.com/curvopt/curvopt/internal/nonfinite"
	"github.com/curvopt/curvopt/optim"
)

// TestOneSentinel checks that the exported names of the non-finite sentinel
// are one value, so that an error from any layer (an optimizer, the engine,
// a spectrum method) matches every name under errors.Is.
func TestOneSentinel(t *testing.T) {
	for name, err := range map[string]error{"optim.ErrNonFinite": optim.ErrNonFinite, "spectrum.ErrNonFinite": spectrum.ErrNonFinite} {
		if err != nonfinite.Err {
			t.Errorf("%s (%p, %q) is not nonfinite.Err (%p)", name, err, err, nonfinite.Err)
		}
	}
	if err := fmt.Errorf("spectrum: operator output entry 3 is NaN: %w", spectrum.ErrNonFinite); !errors.Is(err, optim.ErrNonFinite) {
		t.Errorf("%v does not match optim.ErrNonFinite", err)
	}
}
