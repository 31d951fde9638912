package compare

import (
	"fmt"
	"sort"
	"strings"

	"github.com/curvopt/curvopt/train"
)

// ParseKnobGrid reads a knob grid, "name=v1|v2|...,name=v|..." (a
// -sweep-knobs entry for one optimizer), and returns every combination as
// a canonical knob string (CanonicalKnobs), in order: the first knob
// varies slowest. Each value must parse for its knob
// (train.ParseHyperValue); "lr" is not a knob (the sweep's factors set it).
func ParseKnobGrid(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	type knob struct {
		name   string
		values []string
	}
	var knobs []knob
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		name, vals, ok := strings.Cut(strings.TrimSpace(part), "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" || vals == "" {
			return nil, fmt.Errorf("knob grid %q: %q: want name=value|value|...", s, part)
		}
		if name == "lr" {
			return nil, fmt.Errorf("knob grid %q: lr is swept by the factors, not as a knob", s)
		}
		if seen[name] {
			return nil, fmt.Errorf("knob grid %q: %s given twice", s, name)
		}
		seen[name] = true
		k := knob{name: name}
		for _, v := range strings.Split(vals, "|") {
			v = strings.TrimSpace(v)
			x, err := train.ParseHyperValue(name, strings.TrimSuffix(v, perLR))
			if err != nil {
				return nil, fmt.Errorf("knob grid %q: %w", s, err)
			}
			if _, isFloat := x.(float64); strings.HasSuffix(v, perLR) && !isFloat {
				return nil, fmt.Errorf("knob grid %q: %s: only a real-valued knob can be given per learning rate (%s)", s, v, perLR)
			}
			k.values = append(k.values, v)
		}
		knobs = append(knobs, k)
	}
	combos := [][]string{nil}
	for _, k := range knobs {
		var next [][]string
		for _, c := range combos {
			for _, v := range k.values {
				next = append(next, append(append([]string{}, c...), k.name+"="+v))
			}
		}
		combos = next
	}
	out := make([]string, len(combos))
	for i, c := range combos {
		out[i] = CanonicalKnobs(c)
	}
	return out, nil
}

// CanonicalKnobs joins "name=value" pairs sorted by name with ','.
func CanonicalKnobs(pairs []string) string {
	p := append([]string{}, pairs...)
	sort.Strings(p)
	return strings.Join(p, ",")
}

// perLR ends a knob value that is divided by the run's learning rate, as
// the AdaHessian reference's training script passes weight_decay/lr to a
// decay that its update multiplies by lr again ("weight_decay=5e-4/lr":
// 5e-4 per step at the peak rate, whatever rate the sweep tries).
const perLR = "/lr"

// KnobHyper returns the hyperparameters of a canonical knob string, with
// values parsed as train.ParseHyperValue does, a value given per learning
// rate (perLR) taken at lr 1 (KnobHyperAt gives a run's).
func KnobHyper(knobs string) (train.Hyper, error) { return KnobHyperAt(knobs, 1) }

// KnobHyperAt returns the hyperparameters of a canonical knob string for a
// run at peak learning rate lr > 0: a value ending in "/lr" is divided by
// lr.
func KnobHyperAt(knobs string, lr float64) (train.Hyper, error) {
	h := train.Hyper{}
	if knobs == "" {
		return h, nil
	}
	for _, pair := range strings.Split(knobs, ",") {
		name, v, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, fmt.Errorf("knobs %q: %q is not name=value", knobs, pair)
		}
		x, err := train.ParseHyperValue(name, strings.TrimSuffix(v, perLR))
		if err != nil {
			return nil, fmt.Errorf("knobs %q: %w", knobs, err)
		}
		if f, ok := x.(float64); ok && strings.HasSuffix(v, perLR) {
			if !(lr > 0) {
				return nil, fmt.Errorf("knobs %q: %s needs a learning rate > 0, got %g", knobs, pair, lr)
			}
			x = f / lr
		}
		h[name] = x
	}
	return h, nil
}

// KnobEdges returns a note for every chosen entry whose value of some knob
// lies at an end of the values swept for that knob (a knob optimum that
// may lie outside the grid), e.g. "sophiag: rho=0.2 is the largest rho
// swept".
func KnobEdges(entries []SweepEntry) []string {
	var notes []string
	for _, c := range entries {
		if !c.Chosen || c.Knobs == "" {
			continue
		}
		values := map[string]map[string]bool{}
		for _, e := range entries {
			if e.Optimizer != c.Optimizer {
				continue
			}
			for _, pair := range strings.Split(e.Knobs, ",") {
				name, v, _ := strings.Cut(pair, "=")
				if values[name] == nil {
					values[name] = map[string]bool{}
				}
				values[name][v] = true
			}
		}
		h, err := KnobHyper(c.Knobs)
		if err != nil {
			continue
		}
		for _, pair := range strings.Split(c.Knobs, ",") {
			name, _, _ := strings.Cut(pair, "=")
			x, ok := numeric(h[name])
			if !ok || len(values[name]) < 2 {
				continue
			}
			lower, higher := false, false
			for v := range values[name] {
				y, err := train.ParseHyperValue(name, strings.TrimSuffix(v, perLR))
				if f, ok := numeric(y); err == nil && ok {
					lower = lower || f < x
					higher = higher || f > x
				}
			}
			switch {
			case !lower:
				notes = append(notes, fmt.Sprintf("%s: the chosen %s is the smallest %s swept; its optimum may lie below", c.Optimizer, pair, name))
			case !higher:
				notes = append(notes, fmt.Sprintf("%s: the chosen %s is the largest %s swept; its optimum may lie above", c.Optimizer, pair, name))
			}
		}
	}
	return notes
}

// numeric returns a float or int knob value as a float64.
func numeric(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}

// SweepCounts returns the number of sweep runs per optimizer, in order of
// first appearance, as "name n" strings, and whether every optimizer had
// the same number (the tuning-fairness rule).
func SweepCounts(entries []SweepEntry) (counts []string, equal bool) {
	n := map[string]int{}
	var order []string
	for _, e := range entries {
		if _, ok := n[e.Optimizer]; !ok {
			order = append(order, e.Optimizer)
		}
		n[e.Optimizer] += e.Runs
	}
	equal = true
	for _, o := range order {
		counts = append(counts, fmt.Sprintf("%s %d", o, n[o]))
		equal = equal && n[o] == n[order[0]]
	}
	return counts, equal
}
