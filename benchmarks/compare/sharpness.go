package compare

import (
	"encoding/csv"
	"fmt"
	"image/color"
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
// eigenvalue λ on the step's batch, after the step, the learning rate the
// step used and the stability threshold at that rate. Gradient descent on
// a quadratic with curvature λ is stable only while λ < 2/lr: the edge of
// stability (Cohen et al., 2021); with heavy-ball momentum β the threshold
// is 2(1+β)/lr (Momentum.Threshold). For the adaptive methods the bound
// concerns the preconditioned Hessian instead, so there the threshold is a
// reference line, not a bound.
type SharpPoint struct {
	Step    int
	LR, Top float64
	// Edge is the stability threshold at LR (Momentum.Threshold).
	Edge float64
	// Precond is λ(P⁻¹H) and Limit the optimizer's stability limit c,
	// measured at the same step (RunSpec.SharpnessPrecond); NaN where not.
	Precond, Limit float64
}

// Bound returns lr* = Limit/Precond, the largest stable rate the
// preconditioned curvature predicts: NaN where not measured, +Inf for
// Precond ≤ 0.
func (p SharpPoint) Bound() float64 {
	if math.IsNaN(p.Precond) || math.IsNaN(p.Limit) {
		return math.NaN()
	}
	return CurvPoint{Top: p.Precond, Lim: p.Limit}.Bound()
}

// TwoOverLR is the threshold of plain gradient descent, 2/lr (+Inf at
// lr = 0).
func (p SharpPoint) TwoOverLR() float64 { return 2 / p.LR }

// Momentum is an optimizer's heavy-ball momentum β (SGD's momentum), which
// moves gradient descent's stability threshold on a quadratic from 2/lr to
// 2(1+β)/lr, or with Nesterov's form to 2(1+β)/((1+2β)·lr). The zero value
// is plain gradient descent.
type Momentum struct {
	Beta     float64
	Nesterov bool
}

// Threshold returns the largest curvature λ at which the iteration is
// stable at learning rate lr.
func (m Momentum) Threshold(lr float64) float64 {
	if m.Nesterov {
		return 2 * (1 + m.Beta) / ((1 + 2*m.Beta) * lr)
	}
	return 2 * (1 + m.Beta) / lr
}

// Edges holds the momentum of the optimizers whose stability threshold is
// not 2/lr, by name (sgd with momentum; nil or a missing name: 2/lr).
type Edges map[string]Momentum

// Sharpness returns r's sharpness measurements in step order, each with
// its threshold under momentum m.
func Sharpness(r *RunResult, m Momentum) []SharpPoint {
	var out []SharpPoint
	for _, s := range r.StepLog {
		if s.HessTop != nil {
			pt := SharpPoint{Step: s.Step, LR: s.LR, Top: *s.HessTop, Edge: m.Threshold(s.LR), Precond: math.NaN(), Limit: math.NaN()}
			if s.PrecondTop != nil && s.StabilityLimit != nil {
				pt.Precond, pt.Limit = *s.PrecondTop, *s.StabilityLimit
			}
			out = append(out, pt)
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
	// MaxRatio is the largest λ over the stability threshold (λ·lr/2
	// without momentum); Above the fraction of measurements above it.
	MaxRatio, Above float64
}

// SummarizeSharpness aggregates the tracked runs by optimizer, in order of
// first appearance; optimizers without measurements are left out.
func SummarizeSharpness(results []*RunResult, edges Edges) []SharpSummary {
	var out []SharpSummary
	idx := map[string]int{}
	for _, r := range results {
		if r == nil {
			continue
		}
		pts := Sharpness(r, edges[r.Spec.Optimizer])
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
			s.MaxRatio = math.Max(s.MaxRatio, p.Top/p.Edge)
			if p.Top > p.Edge {
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
	b.WriteString("| optimizer | runs | measurements | λ first | λ last | λ max | max λ / threshold | share above the threshold |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range sums {
		fmt.Fprintf(&b, "| %s | %d | %d | %.4g | %.4g | %.4g | %.3g | %.0f%% |\n",
			s.Optimizer, s.Runs, s.Points, s.First, s.Last, s.Max, s.MaxRatio, 100*s.Above)
	}
	b.WriteString("\nThe threshold is gradient descent's edge of stability: λ = 2/lr, or 2(1+β)/lr with heavy-ball momentum β " +
		"(SGD's; 2(1+β)/((1+2β)·lr) for Nesterov's). It binds SGD; the adaptive " +
		"methods divide each coordinate by their own curvature estimate, so for them 2/lr is a reference line only. " +
		"See sharpness_vs_steps and sharpness_vs_2lr.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// SharpnessColumns are the columns of sharpness.csv.
// precond_top, stability_limit and lr_bound (= stability_limit /
// precond_top) are empty where the preconditioned curvature was not
// measured (RunSpec.SharpnessPrecond).
var SharpnessColumns = []string{"phase", "optimizer", "lr", "seed", "step", "step_lr", "hessian_top", "two_over_lr", "threshold", "precond_top", "stability_limit", "lr_bound"}

// WriteSharpnessCSV writes every sharpness measurement, one row each, with
// 2/lr and the threshold under the optimizer's momentum (edges) and, where
// measured, the preconditioned curvature and its bound.
func WriteSharpnessCSV(w io.Writer, results []*RunResult, edges Edges) error {
	opt := func(x float64) string {
		if math.IsNaN(x) {
			return ""
		}
		return ff(x)
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(SharpnessColumns); err != nil {
		return err
	}
	for _, r := range results {
		if r == nil {
			continue
		}
		s := r.Spec
		for _, p := range Sharpness(r, edges[s.Optimizer]) {
			if err := cw.Write([]string{s.Phase, s.Optimizer, ff(s.LR), strconv.FormatUint(s.Seed, 10),
				strconv.Itoa(p.Step), ff(p.LR), ff(p.Top), ff(p.TwoOverLR()), ff(p.Edge), opt(p.Precond), opt(p.Limit), opt(p.Bound())}); err != nil {
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
// sharpness_vs_steps (λ as a solid line and the stability threshold
// dashed, per run, on a log scale) and sharpness_vs_2lr (λ against the
// threshold, log–log, with the line λ = threshold), as .png and .svg in
// dir. The threshold (2/lr, or 2(1+β)/lr with momentum: edges) grows
// without bound as a cosine schedule decays to zero, so both plots show it
// only up to ten times the larger of the largest λ measured and the
// largest run's threshold at its peak rate (the axis says where): every
// run's peak-rate threshold is in view, its cosine tail is cut. Each
// optimizer has its colour (optimizerColor); its seeds differ by glyph and
// dash pattern.
func WriteSharpnessPlots(dir, title string, results []*RunResult, edges Edges) error {
	type series struct {
		opt  string
		seed uint64
		pts  []SharpPoint
	}
	var all []series
	var opts []string
	for _, r := range results {
		if r == nil {
			continue
		}
		var pts []SharpPoint
		for _, p := range Sharpness(r, edges[r.Spec.Optimizer]) {
			if p.Top > 0 && p.LR > 0 { // a log scale shows positive values only
				pts = append(pts, p)
			}
		}
		if len(pts) > 0 {
			if !containsString(opts, r.Spec.Optimizer) {
				opts = append(opts, r.Spec.Optimizer)
			}
			all = append(all, series{r.Spec.Optimizer, r.Spec.Seed, pts})
		}
	}
	if len(all) == 0 {
		return nil
	}
	topMin, topMax, peakEdge := math.Inf(1), 0.0, 0.0
	for _, s := range all {
		lowest := math.Inf(1) // the run's threshold at its peak rate
		for _, p := range s.pts {
			topMin, topMax = math.Min(topMin, p.Top), math.Max(topMax, p.Top)
			lowest = math.Min(lowest, p.Edge)
		}
		peakEdge = math.Max(peakEdge, lowest)
	}
	cut := 10 * math.Max(topMax, peakEdge)
	steps := plot.New()
	steps.Title.Text = fmt.Sprintf("%s: sharpness (thresholds cut at %.3g)", title, cut)
	steps.X.Label.Text = "step"
	steps.Y.Label.Text = "λmax (solid), stability threshold (dashed)"
	steps.Y.Scale, steps.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	vs := plot.New()
	vs.Title.Text = fmt.Sprintf("%s: sharpness against the stability threshold (cut at %.3g)", title, cut)
	vs.X.Label.Text = "stability threshold: 2/lr, or 2(1+β)/lr with momentum β"
	vs.Y.Label.Text = "top Hessian eigenvalue λ"
	vs.X.Scale, vs.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	vs.Y.Scale, vs.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	for _, p := range []*plot.Plot{steps, vs} {
		p.Add(plotter.NewGrid())
		p.Legend.Top, p.Legend.Left = true, true
	}
	seedN := map[string]int{}
	lo := topMin
	for _, s := range all {
		c := optimizerColor(s.opt, indexOf(opts, s.opt))
		k := seedN[s.opt]
		seedN[s.opt]++
		var top, edge, sc plotter.XYs
		for _, p := range s.pts {
			top = append(top, plotter.XY{X: float64(p.Step), Y: p.Top})
			e := math.Min(p.Edge, cut)
			edge = append(edge, plotter.XY{X: float64(p.Step), Y: e})
			if p.Edge <= cut {
				sc = append(sc, plotter.XY{X: p.Edge, Y: p.Top})
				lo = math.Min(lo, p.Edge)
			}
		}
		name := fmt.Sprintf("%s seed %d", s.opt, s.seed)
		l, err := plotter.NewLine(top)
		if err != nil {
			return fmt.Errorf("compare: sharpness plot %s: %w", name, err)
		}
		l.Color, l.Width = c, vg.Points(1.5)
		if k > 0 {
			l.Dashes = []vg.Length{vg.Points(1 + float64(k)), vg.Points(2)}
		}
		e, err := plotter.NewLine(edge)
		if err != nil {
			return fmt.Errorf("compare: sharpness plot %s: %w", name, err)
		}
		e.Color, e.Width, e.Dashes = c, vg.Points(1), []vg.Length{vg.Points(6), vg.Points(3)}
		steps.Add(l, e)
		steps.Legend.Add(name, l)
		if len(sc) > 0 {
			pts, err := plotter.NewScatter(sc)
			if err != nil {
				return fmt.Errorf("compare: sharpness plot %s: %w", name, err)
			}
			pts.Color, pts.Shape = c, seedGlyph(k)
			vs.Add(pts)
			vs.Legend.Add(name, pts)
		}
	}
	diag, err := plotter.NewLine(plotter.XYs{{X: lo, Y: lo}, {X: cut, Y: cut}})
	if err != nil {
		return fmt.Errorf("compare: sharpness plot: %w", err)
	}
	diag.Color, diag.Dashes = color.Gray{Y: 128}, []vg.Length{vg.Points(2), vg.Points(2)}
	vs.Add(diag)
	vs.Legend.Add("λ = threshold", diag)
	steps.Y.Max = math.Min(steps.Y.Max, cut)
	vs.X.Max = math.Min(vs.X.Max, cut)
	vs.Y.Max = math.Min(vs.Y.Max, 10*topMax) // the diagonal runs on, clipped
	if err := savePlot(steps, dir, SharpnessPlotNames[0]); err != nil {
		return err
	}
	return savePlot(vs, dir, SharpnessPlotNames[1])
}

// seedGlyph returns the k-th seed's scatter glyph.
func seedGlyph(k int) draw.GlyphDrawer {
	gs := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{}, draw.RingGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}}
	return gs[k%len(gs)]
}

func containsString(xs []string, x string) bool { return indexOf(xs, x) >= 0 }

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}
