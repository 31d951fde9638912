package compare

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// SharpPoint is one sharpness measurement along a run: the Hessian's top
// eigenvalue λ on the step's batch, after the step, and the learning rate
// the step used. Gradient descent on a quadratic with curvature λ is stable
// only while λ < 2/lr: the edge of stability (Cohen et al., 2021). For the
// adaptive methods the bound concerns the preconditioned Hessian instead,
// so there 2/lr is a reference line, not a threshold.
type SharpPoint struct {
	Step    int
	LR, Top float64
}

// TwoOverLR is the edge-of-stability threshold 2/lr (+Inf at lr = 0).
func (p SharpPoint) TwoOverLR() float64 { return 2 / p.LR }

// Sharpness returns r's sharpness measurements in step order.
func Sharpness(r *RunResult) []SharpPoint {
	var out []SharpPoint
	for _, s := range r.StepLog {
		if s.HessTop != nil {
			out = append(out, SharpPoint{Step: s.Step, LR: s.LR, Top: *s.HessTop})
		}
	}
	return out
}

// SharpSummary condenses the sharpness of one optimizer's tracked runs.
type SharpSummary struct {
	Optimizer string
	Runs      int
	Points    int
	// First, Last and Max are λ at the first and last measurement (mean
	// over runs) and the largest λ measured.
	First, Last, Max float64
	// MaxRatio is the largest λ·lr/2 (λ over the 2/lr threshold); Above
	// the fraction of measurements with λ > 2/lr.
	MaxRatio, Above float64
}

// SummarizeSharpness aggregates the tracked runs by optimizer, in order of
// first appearance; optimizers without measurements are left out.
func SummarizeSharpness(results []*RunResult) []SharpSummary {
	var out []SharpSummary
	idx := map[string]int{}
	for _, r := range results {
		if r == nil {
			continue
		}
		pts := Sharpness(r)
		if len(pts) == 0 {
			continue
		}
		i, ok := idx[r.Spec.Optimizer]
		if !ok {
			i = len(out)
			idx[r.Spec.Optimizer] = i
			out = append(out, SharpSummary{Optimizer: r.Spec.Optimizer, Max: math.Inf(-1)})
		}
		s := &out[i]
		s.Runs++
		s.First += pts[0].Top
		s.Last += pts[len(pts)-1].Top
		above := s.Above * float64(s.Points)
		for _, p := range pts {
			s.Max = math.Max(s.Max, p.Top)
			s.MaxRatio = math.Max(s.MaxRatio, p.Top*p.LR/2)
			if p.Top > p.TwoOverLR() {
				above++
			}
		}
		s.Points += len(pts)
		s.Above = above / float64(s.Points)
	}
	for i := range out {
		out[i].First /= float64(out[i].Runs)
		out[i].Last /= float64(out[i].Runs)
	}
	return out
}

// RenderSharpness writes the Markdown section on sharpness (nothing when no
// run tracked it).
func RenderSharpness(w io.Writer, sums []SharpSummary) error {
	if len(sums) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("\n## Sharpness along training (top Hessian eigenvalue λ on the training batch)\n\n")
	b.WriteString("| optimizer | runs | measurements | λ first | λ last | λ max | max λ·lr/2 | share above 2/lr |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range sums {
		fmt.Fprintf(&b, "| %s | %d | %d | %.4g | %.4g | %.4g | %.3g | %.0f%% |\n",
			s.Optimizer, s.Runs, s.Points, s.First, s.Last, s.Max, s.MaxRatio, 100*s.Above)
	}
	b.WriteString("\nλ·lr/2 ≥ 1 is gradient descent's edge of stability (λ ≥ 2/lr). It binds SGD; the adaptive " +
		"methods divide each coordinate by their own curvature estimate, so for them 2/lr is a reference line only. " +
		"See sharpness_vs_steps and sharpness_vs_2lr.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// SharpnessColumns are the columns of sharpness.csv.
var SharpnessColumns = []string{"phase", "optimizer", "lr", "seed", "step", "step_lr", "hessian_top", "two_over_lr"}

// WriteSharpnessCSV writes every sharpness measurement, one row each.
func WriteSharpnessCSV(w io.Writer, results []*RunResult) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(SharpnessColumns); err != nil {
		return err
	}
	for _, r := range results {
		if r == nil {
			continue
		}
		s := r.Spec
		for _, p := range Sharpness(r) {
			if err := cw.Write([]string{s.Phase, s.Optimizer, ff(s.LR), strconv.FormatUint(s.Seed, 10),
				strconv.Itoa(p.Step), ff(p.LR), ff(p.Top), ff(p.TwoOverLR())}); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// SharpnessPlotNames are the stems of the plots WriteSharpnessPlots writes.
var SharpnessPlotNames = []string{"sharpness_vs_steps", "sharpness_vs_2lr"}

// WriteSharpnessPlots writes, when some run tracked sharpness,
// sharpness_vs_steps (λ as a solid line and 2/lr dashed, per optimizer, on
// a log scale) and sharpness_vs_2lr (λ against 2/lr, log–log, with the
// line λ = 2/lr), as .png and .svg in dir.
func WriteSharpnessPlots(dir, title string, results []*RunResult) error {
	type series struct {
		name string
		pts  []SharpPoint
	}
	var all []series
	for _, r := range results {
		if r == nil {
			continue
		}
		var pts []SharpPoint
		for _, p := range Sharpness(r) {
			if p.Top > 0 && p.LR > 0 { // a log scale shows positive values only
				pts = append(pts, p)
			}
		}
		if len(pts) > 0 {
			all = append(all, series{fmt.Sprintf("%s seed %d", r.Spec.Optimizer, r.Spec.Seed), pts})
		}
	}
	if len(all) == 0 {
		return nil
	}
	steps := plot.New()
	steps.Title.Text = title + ": sharpness"
	steps.X.Label.Text = "step"
	steps.Y.Label.Text = "top Hessian eigenvalue λ (solid), 2/lr (dashed)"
	steps.Y.Scale, steps.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	vs := plot.New()
	vs.Title.Text = title + ": sharpness against the edge of stability"
	vs.X.Label.Text = "2/lr"
	vs.Y.Label.Text = "top Hessian eigenvalue λ"
	vs.X.Scale, vs.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	vs.Y.Scale, vs.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	for _, p := range []*plot.Plot{steps, vs} {
		p.Add(plotter.NewGrid())
		p.Legend.Top, p.Legend.Left = true, true
	}
	lo, hi, topMax := math.Inf(1), math.Inf(-1), 0.0
	for i, s := range all {
		c := palette(i)
		top, edge := make(plotter.XYs, len(s.pts)), make(plotter.XYs, len(s.pts))
		sc := make(plotter.XYs, len(s.pts))
		for j, p := range s.pts {
			top[j] = plotter.XY{X: float64(p.Step), Y: p.Top}
			edge[j] = plotter.XY{X: float64(p.Step), Y: p.TwoOverLR()}
			sc[j] = plotter.XY{X: p.TwoOverLR(), Y: p.Top}
			topMax = math.Max(topMax, p.Top)
			lo = math.Min(lo, math.Min(p.Top, p.TwoOverLR()))
			hi = math.Max(hi, math.Max(p.Top, p.TwoOverLR()))
		}
		l, err := plotter.NewLine(top)
		if err != nil {
			return fmt.Errorf("compare: sharpness plot %s: %w", s.name, err)
		}
		l.Color, l.Width = c, vg.Points(1.5)
		e, err := plotter.NewLine(edge)
		if err != nil {
			return fmt.Errorf("compare: sharpness plot %s: %w", s.name, err)
		}
		e.Color, e.Width, e.Dashes = c, vg.Points(1), []vg.Length{vg.Points(4), vg.Points(3)}
		steps.Add(l, e)
		steps.Legend.Add(s.name, l)
		pts, err := plotter.NewScatter(sc)
		if err != nil {
			return fmt.Errorf("compare: sharpness plot %s: %w", s.name, err)
		}
		pts.Color, pts.Shape = c, draw.CircleGlyph{}
		vs.Add(pts)
		vs.Legend.Add(s.name, pts)
	}
	diag, err := plotter.NewLine(plotter.XYs{{X: lo, Y: lo}, {X: hi, Y: hi}})
	if err != nil {
		return fmt.Errorf("compare: sharpness plot: %w", err)
	}
	diag.Color, diag.Dashes = palette(9), []vg.Length{vg.Points(2), vg.Points(2)}
	vs.Add(diag)
	vs.Legend.Add("λ = 2/lr", diag)
	// 2/lr grows without bound as a cosine schedule decays to zero: show it
	// up to three decades above the largest eigenvalue (Add has fitted the
	// axis to the data; lines are clipped).
	steps.Y.Max = math.Min(steps.Y.Max, 1e3*topMax)
	if err := savePlot(steps, dir, SharpnessPlotNames[0]); err != nil {
		return err
	}
	return savePlot(vs, dir, SharpnessPlotNames[1])
}
