package compare

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/curvopt/curvopt/train"
)

// CurvPoint is one measurement of the preconditioned curvature along a run
// (train.Config.HessianPrecond): λ, the dominant eigenvalue of P⁻¹H (P the
// optimizer's preconditioner), the optimizer's stability limit c and the
// rate the step used. With P frozen the iteration on a quadratic is stable
// iff lr·λ < c, so Bound = c/λ is the largest stable rate that the
// curvature alone predicts.
type CurvPoint struct {
	Step         int
	LR, Top, Lim float64
	// Unconverged is set where the power iteration stopped at its budget.
	Unconverged bool
}

// Bound returns lr* = c/λ, or +Inf for λ ≤ 0 (no bound from a dominant
// eigenvalue that is not positive).
func (p CurvPoint) Bound() float64 {
	if !(p.Top > 0) {
		return math.Inf(1)
	}
	return p.Lim / p.Top
}

// Curvature returns r's preconditioned-curvature measurements in step
// order.
func Curvature(r *RunResult) []CurvPoint {
	var out []CurvPoint
	for _, s := range r.StepLog {
		if s.PrecondTop != nil && s.StabilityLimit != nil {
			out = append(out, CurvPoint{Step: s.Step, LR: s.LR, Top: *s.PrecondTop, Lim: *s.StabilityLimit,
				Unconverged: s.PrecondConverged != nil && !*s.PrecondConverged})
		}
	}
	return out
}

// CurvSummary condenses one configuration's (RunSpec.Label) tracked runs:
// the chosen peak rate against the bound lr* = c/λ(P⁻¹H).
type CurvSummary struct {
	Label string
	// Chosen is the peak learning rate (RunSpec.LR); Limit the stability
	// limit c.
	Chosen, Limit float64
	Runs, Points  int
	// StartTop and StartBound are λ and lr* at the first measurement (step
	// 1 with HessianPrecond), mean over runs.
	StartTop, StartBound float64
	// MinBound and MedianBound are over every measurement of every run.
	MinBound, MedianBound float64
	// MaxEdge is the largest lr_t·λ_t/c along the runs (above 1: the step's
	// rate was past the bound of that moment); NonPositive counts the
	// measurements with λ ≤ 0 (no bound).
	MaxEdge     float64
	NonPositive int
	// Unconverged counts the measurements whose power iteration stopped
	// at its budget.
	Unconverged int
}

// SummarizeCurvature aggregates the runs that measured the preconditioned
// curvature, by configuration, in order of first appearance.
func SummarizeCurvature(results []*RunResult) []CurvSummary {
	var out []CurvSummary
	idx := map[string]int{}
	bounds := map[string][]float64{}
	for _, r := range results {
		if r == nil {
			continue
		}
		pts := Curvature(r)
		if len(pts) == 0 {
			continue
		}
		l := r.Spec.Label()
		i, ok := idx[l]
		if !ok {
			i = len(out)
			idx[l] = i
			out = append(out, CurvSummary{Label: l, Chosen: r.Spec.LR, Limit: pts[0].Lim, MinBound: math.Inf(1)})
		}
		s := &out[i]
		s.Runs++
		s.StartTop += pts[0].Top
		s.StartBound += pts[0].Bound()
		for _, p := range pts {
			b := p.Bound()
			if math.IsInf(b, 1) {
				s.NonPositive++
			}
			if p.Unconverged {
				s.Unconverged++
			}
			bounds[l] = append(bounds[l], b)
			s.MinBound = math.Min(s.MinBound, b)
			if e := p.LR * p.Top / p.Lim; e > s.MaxEdge {
				s.MaxEdge = e
			}
		}
		s.Points += len(pts)
	}
	for i := range out {
		s := &out[i]
		s.StartTop /= float64(s.Runs)
		s.StartBound /= float64(s.Runs)
		b := bounds[s.Label]
		sort.Float64s(b)
		if n := len(b); n%2 == 1 {
			s.MedianBound = b[n/2]
		} else {
			s.MedianBound = (b[n/2-1] + b[n/2]) / 2
		}
	}
	return out
}

// RenderCurvature writes the Markdown section "Curvature and the chosen
// rate" (nothing when no run measured it).
func RenderCurvature(w io.Writer, sums []CurvSummary) error {
	if len(sums) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("\n## Curvature and the chosen rate\n\n")
	b.WriteString("| optimizer | chosen lr | limit c | λ(P⁻¹H) at step 1 | lr* at step 1 | lr* min | lr* median | chosen / lr* at step 1 | chosen / median lr* | max lr·λ/c along the run | measurements |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range sums {
		n := strconv.Itoa(s.Points)
		var notes []string
		if s.NonPositive > 0 {
			notes = append(notes, fmt.Sprintf("%d with λ ≤ 0", s.NonPositive))
		}
		if s.Unconverged > 0 {
			notes = append(notes, fmt.Sprintf("%d not converged", s.Unconverged))
		}
		if len(notes) > 0 {
			n += " (" + strings.Join(notes, ", ") + ")"
		}
		fmt.Fprintf(&b, "| %s | %.4g | %.4g | %.4g | %.4g | %.4g | %.4g | %.3g | %.3g | %.3g | %s |\n",
			s.Label, s.Chosen, s.Limit, s.StartTop, s.StartBound, s.MinBound, s.MedianBound,
			s.Chosen/s.StartBound, s.Chosen/s.MedianBound, s.MaxEdge, n)
	}
	b.WriteString("\nλ(P⁻¹H) is the dominant eigenvalue of the Hessian on the training batch preconditioned by the optimizer's " +
		"own P (its next step's denominator: I for SGD, √v̂+ε for Adam, (√v̂)ᵏ+ε for AdaHessian, ρ·bs·h+ε for Sophia, " +
		"the window's (λI + GᵀG/m) for M-FAC), by power iteration; c is the stability limit of the optimizer's momentum on a " +
		"quadratic with P frozen (2(1+μ)/(1−τ) for heavy ball, 2(1+μ)/(1+2μ) for Nesterov's, 2(1+β1)/(1−β1) for an EMA: 38 at β1 = 0.9); lr* = c/λ is the " +
		"largest stable rate the curvature alone predicts (at most 20 power iterations, stopping at a relative change of 1e-3: " +
		"\"not converged\" counts the measurements that used them all, whose λ is then the last estimate, a lower bound for a positive dominant λ). A ratio chosen/lr* near 1 says the swept rate sits at the edge of " +
		"stability; far below 1, something other than stability set it. Sophia's clipped coordinates move by at most lr whatever " +
		"their curvature (where h ≤ 0, P = ε), so its bound speaks only of the unclipped ones; M-FAC's P is λ·I off the window's " +
		"span, so its λ(P⁻¹H) can be as large as λmax(H)/damp.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// ChosenColumns are the columns of chosen.csv.
var ChosenColumns = []string{"optimizer", "lr", "knobs", "hyper"}

// WriteChosenCSV writes one row per optimizer (in the order of opts): the
// chosen learning rate, the chosen knobs as swept (RunSpec.Knobs, "" for
// none) and the same knobs in -hyper syntax ("k=v,k=v") resolved at the
// chosen rate (a value per rate, "5e-4/lr", divided by it), so that a later
// compare can take them: -lrs opt=lr and -hyper "opt:hyper".
func WriteChosenCSV(w io.Writer, opts []string, chosen map[string]float64, knobs map[string]string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(ChosenColumns); err != nil {
		return err
	}
	for _, name := range opts {
		lr, ok := chosen[name]
		if !ok {
			continue
		}
		h, err := KnobHyperAt(knobs[name], lr)
		if err != nil {
			return fmt.Errorf("compare: chosen.csv: %s: %w", name, err)
		}
		if err := cw.Write([]string{name, strconv.FormatFloat(lr, 'g', -1, 64), knobs[name], HyperString(h)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// HyperString writes h as "k=v,k=v" in sorted order, each value the
// shortest text that reads back as the same value.
func HyperString(h train.Hyper) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		var v string
		switch x := h[k].(type) {
		case float64:
			v = strconv.FormatFloat(x, 'g', -1, 64)
		default:
			v = fmt.Sprint(x)
		}
		parts[i] = k + "=" + v
	}
	return strings.Join(parts, ",")
}
