package optim

import (
	"fmt"
	"math/rand/v2"

	"gorgonia.org/tensor"
)

// ProbeSource fills tensors with random probe vectors. Implementations are
// seeded so runs are reproducible, and a golden test can substitute one that
// replays recorded probes.
type ProbeSource interface {
	// Fill overwrites every tensor in out with a fresh draw.
	Fill(out []*tensor.Dense) error
}

// ProbeKind is the distribution of a random probe.
type ProbeKind int

const (
	// Rademacher draws each entry from {−1, +1} with equal probability.
	Rademacher ProbeKind = iota
	// Gaussian draws each entry from N(0, 1).
	Gaussian
)

func (k ProbeKind) String() string {
	switch k {
	case Rademacher:
		return "rademacher"
	case Gaussian:
		return "gaussian"
	}
	return fmt.Sprintf("ProbeKind(%d)", int(k))
}

// RandomProbes is a seeded ProbeSource backed by a PCG generator. Its state
// can be saved and restored (MarshalBinary/UnmarshalBinary) so that a resumed
// run draws the same probes as an uninterrupted one.
type RandomProbes struct {
	Kind ProbeKind
	pcg  *rand.PCG
	rng  *rand.Rand
}

// NewRandomProbes returns a probe source of the given kind seeded with seed.
func NewRandomProbes(kind ProbeKind, seed uint64) *RandomProbes {
	pcg := rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)
	return &RandomProbes{Kind: kind, pcg: pcg, rng: rand.New(pcg)}
}

// Fill draws a fresh probe into each tensor of out.
func (r *RandomProbes) Fill(out []*tensor.Dense) error {
	for _, t := range out {
		switch t.Dtype() {
		case tensor.Float64:
			fillProbe(r, t.Float64s())
		case tensor.Float32:
			fillProbe(r, t.Float32s())
		default:
			return fmt.Errorf("probe: unsupported dtype %v", t.Dtype())
		}
	}
	return nil
}

func fillProbe[T Float](r *RandomProbes, d []T) {
	if r.Kind == Gaussian {
		for i := range d {
			d[i] = T(r.rng.NormFloat64())
		}
		return
	}
	var bits uint64
	for i := range d {
		if i%64 == 0 {
			bits = r.rng.Uint64()
		}
		if bits&1 == 1 {
			d[i] = 1
		} else {
			d[i] = -1
		}
		bits >>= 1
	}
}

// MarshalBinary saves the generator's state.
func (r *RandomProbes) MarshalBinary() ([]byte, error) { return r.pcg.MarshalBinary() }

// UnmarshalBinary restores a state saved by MarshalBinary.
func (r *RandomProbes) UnmarshalBinary(b []byte) error {
	if err := r.pcg.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("probe source state: %w", err)
	}
	return nil
}
