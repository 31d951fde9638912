package train

import (
	"errors"

	"github.com/curvopt/curvopt/optim"
)

// newMFAC is replaced when the M-FAC optimizer lands.
func newMFAC(h Hyper, set func(string, *float64), setInt func(string, *int)) (optim.Optimizer, error) {
	return nil, errors.New("mfac: not available in this build yet")
}

func mfacDefaultsLine() string { return "(not available yet)" }

func mfacDefaultLR() float64 { return 1e-3 }
