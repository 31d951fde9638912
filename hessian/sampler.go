package hessian

import (
	"fmt"
	"math/rand/v2"
)

// RandSampler draws labels from the given probabilities with a seeded
// *rand.Rand (inverse-CDF sampling, one uniform draw per row).
type RandSampler struct {
	R *rand.Rand
}

// Sample implements nn.LabelSampler.
func (s RandSampler) Sample(probs []float64, classes int, labels []int) error {
	if s.R == nil {
		return fmt.Errorf("hessian: RandSampler with nil *rand.Rand")
	}
	for r := range labels {
		p := probs[r*classes : (r+1)*classes]
		u := s.R.Float64()
		l := classes - 1
		var c float64
		for j, v := range p {
			c += v
			if u < c {
				l = j
				break
			}
		}
		labels[r] = l
	}
	return nil
}

// FixedSampler returns the same labels at every draw (for tests and for
// replaying labels recorded by a reference implementation).
type FixedSampler struct {
	Labels []int
}

// Sample implements nn.LabelSampler by copying s.Labels.
func (s FixedSampler) Sample(_ []float64, classes int, labels []int) error {
	if len(s.Labels) != len(labels) {
		return fmt.Errorf("hessian: FixedSampler has %d labels for a batch of %d", len(s.Labels), len(labels))
	}
	for i, l := range s.Labels {
		if l < 0 || l >= classes {
			return fmt.Errorf("hessian: FixedSampler label %d at row %d out of range [0, %d)", l, i, classes)
		}
	}
	copy(labels, s.Labels)
	return nil
}
