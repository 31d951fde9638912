package train

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Schedule maps a step number to a multiplier of the base learning rate:
// lr(t) = base · Factor(t), for t = 0, 1, … (the step about to be taken).
//
// Kinds:
//   - "constant": 1.
//   - "step": Gamma^(number of Milestones ≤ t) (step decay, like torch's
//     MultiStepLR; milestones in steps).
//   - "cosine": ½(1 + cos(π·t'/T'))·(1 − MinFactor) + MinFactor, with t'
//     counted from the end of the warm-up and T' = Total − Warmup.
//
// Any kind may start with a linear warm-up over Warmup steps, from
// 1/Warmup of the rate up to the full rate.
type Schedule struct {
	Kind       string  `json:"kind"`
	Warmup     int     `json:"warmup,omitempty"`
	Milestones []int   `json:"milestones,omitempty"`
	Gamma      float64 `json:"gamma,omitempty"`
	Total      int     `json:"total,omitempty"`
	MinFactor  float64 `json:"min_factor,omitempty"`
}

// Validate checks the schedule for the given total number of steps.
func (s Schedule) Validate() error {
	switch s.Kind {
	case "", "constant", "cosine":
	case "step":
		if !(s.Gamma > 0) || s.Gamma > 1 {
			return fmt.Errorf("schedule: step decay gamma = %v: must be in (0, 1]", s.Gamma)
		}
		for i, m := range s.Milestones {
			if m <= 0 || (i > 0 && m <= s.Milestones[i-1]) {
				return fmt.Errorf("schedule: milestones %v must be positive and increasing", s.Milestones)
			}
		}
	default:
		return fmt.Errorf("schedule: unknown kind %q (want constant, step or cosine)", s.Kind)
	}
	if s.Warmup < 0 {
		return fmt.Errorf("schedule: warmup = %d: must be >= 0", s.Warmup)
	}
	if s.Kind == "cosine" && s.Total <= s.Warmup {
		return fmt.Errorf("schedule: cosine needs total steps (%d) > warmup (%d)", s.Total, s.Warmup)
	}
	if s.MinFactor < 0 || s.MinFactor > 1 {
		return fmt.Errorf("schedule: min factor = %v: must be in [0, 1]", s.MinFactor)
	}
	return nil
}

// Factor returns the learning-rate multiplier for step t (0-based).
func (s Schedule) Factor(t int) float64 {
	f := 1.0
	switch s.Kind {
	case "step":
		for _, m := range s.Milestones {
			if t >= m {
				f *= s.Gamma
			}
		}
	case "cosine":
		tt := t - s.Warmup
		if tt < 0 {
			tt = 0
		}
		span := s.Total - s.Warmup
		if tt > span {
			tt = span
		}
		f = s.MinFactor + (1-s.MinFactor)*0.5*(1+math.Cos(math.Pi*float64(tt)/float64(span)))
	}
	if s.Warmup > 0 && t < s.Warmup {
		f *= float64(t+1) / float64(s.Warmup)
	}
	return f
}

// ParseSchedule reads a schedule from a command-line string:
//
//	constant
//	cosine            (Total filled in by the caller: the run's budget)
//	cosine:5000       (Total 5000 steps)
//	step:1000,2000    (milestones in steps, gamma 0.1)
//	step:1000,2000:0.2
//
// Warm-up is set separately.
func ParseSchedule(spec string) (Schedule, error) {
	parts := strings.Split(spec, ":")
	s := Schedule{Kind: parts[0]}
	switch s.Kind {
	case "constant":
		if len(parts) != 1 {
			return s, fmt.Errorf("schedule %q: constant takes no arguments", spec)
		}
	case "cosine":
		if len(parts) > 2 {
			return s, fmt.Errorf("schedule %q: want cosine or cosine:TOTAL", spec)
		}
		if len(parts) == 1 {
			return s, nil // the caller fills in Total (the run's budget)
		}
		v, err := strconv.Atoi(strings.TrimSpace(parts[1]))
		if err != nil || v < 1 {
			return s, fmt.Errorf("schedule %q: the horizon %q is not a positive integer", spec, parts[1])
		}
		s.Total = v
	case "step":
		if len(parts) < 2 || len(parts) > 3 {
			return s, fmt.Errorf("schedule %q: want step:M1,M2[,...][:GAMMA]", spec)
		}
		for _, m := range strings.Split(parts[1], ",") {
			v, err := strconv.Atoi(strings.TrimSpace(m))
			if err != nil {
				return s, fmt.Errorf("schedule %q: milestone %q is not an integer", spec, m)
			}
			s.Milestones = append(s.Milestones, v)
		}
		s.Gamma = 0.1
		if len(parts) == 3 {
			g, err := strconv.ParseFloat(parts[2], 64)
			if err != nil {
				return s, fmt.Errorf("schedule %q: gamma %q is not a number", spec, parts[2])
			}
			s.Gamma = g
		}
	default:
		return s, fmt.Errorf("schedule %q: unknown kind (want constant, cosine or step:M1,M2[:GAMMA])", spec)
	}
	v := s
	if v.Kind == "cosine" && v.Total == 0 {
		v.Total = v.Warmup + 1 // the run fills in its total steps
	}
	return s, v.Validate()
}
