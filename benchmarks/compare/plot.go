package compare

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// PlotNames are the stems of the plot files WritePlots writes (each as .png
// and .svg).
var PlotNames = []string{"loss_vs_steps", "acc_vs_steps", "loss_vs_wall", "acc_vs_wall", "val_loss_vs_steps", "val_loss_vs_wall"}

// band is one optimizer's curve over seeds: the mean x and the mean, minimum
// and maximum y at each point index.
type band struct {
	x, mean, lo, hi []float64
}

// makeBand aligns the seeds' curves by index (up to the shortest) and
// returns the mean x and the mean and min–max of y.
func makeBand(xs, ys [][]float64) band {
	n := math.MaxInt
	for _, x := range xs {
		n = min(n, len(x))
	}
	if len(xs) == 0 || n == 0 {
		return band{}
	}
	b := band{x: make([]float64, n), mean: make([]float64, n), lo: make([]float64, n), hi: make([]float64, n)}
	for i := 0; i < n; i++ {
		b.lo[i], b.hi[i] = math.Inf(1), math.Inf(-1)
		for k := range xs {
			b.x[i] += xs[k][i] / float64(len(xs))
			y := ys[k][i]
			b.mean[i] += y / float64(len(xs))
			b.lo[i] = math.Min(b.lo[i], y)
			b.hi[i] = math.Max(b.hi[i], y)
		}
	}
	return b
}

// smooth returns the trailing moving average of ys over w points (w ≤ 1:
// a copy).
func smooth(ys []float64, w int) []float64 {
	out := make([]float64, len(ys))
	if w <= 1 {
		copy(out, ys)
		return out
	}
	var s float64
	for i, y := range ys {
		s += y
		if i >= w {
			s -= ys[i-w]
		}
		out[i] = s / float64(min(i+1, w))
	}
	return out
}

// curveSet extracts, per run of one optimizer, the x and y series of one
// plot.
type curveSet func(r *RunResult) (x, y []float64)

func lossBy(wall bool, window int) curveSet {
	return func(r *RunResult) ([]float64, []float64) {
		x, y := make([]float64, len(r.StepLog)), make([]float64, len(r.StepLog))
		for i, p := range r.StepLog {
			x[i], y[i] = float64(p.Step), p.Loss
			if wall {
				x[i] = p.WallS
			}
		}
		return x, smooth(y, window)
	}
}

func accBy(wall bool) curveSet {
	return evalBy(wall, func(e EvalPoint) float64 { return 100 * e.TestAcc })
}

func testLossBy(wall bool) curveSet {
	return evalBy(wall, func(e EvalPoint) float64 { return e.TestLoss })
}

// evalBy plots f of each evaluation against its step or training time.
func evalBy(wall bool, f func(EvalPoint) float64) curveSet {
	return func(r *RunResult) ([]float64, []float64) {
		x, y := make([]float64, len(r.Evals)), make([]float64, len(r.Evals))
		for i, e := range r.Evals {
			x[i], y[i] = float64(e.Step), f(e)
			if wall {
				x[i] = e.WallS
			}
		}
		return x, y
	}
}

// WritePlots writes dir/<name>.png and .svg for each of PlotNames: the
// training loss (trailing moving average over about 2% of the run), the
// test accuracy and the test loss against steps and against training time,
// one line per
// optimizer (the mean over seeds) with a shaded min–max band, which the
// legend names. Runs are grouped by
// optimizer in order of first appearance; diverged runs are included up to
// where they stopped.
func WritePlots(dir, title string, results []*RunResult) error {
	var opts []string
	byOpt := map[string][]*RunResult{}
	longest := 0
	for _, r := range results {
		if r == nil {
			continue
		}
		l := r.Spec.Label() // an optimizer's knob settings and extra budgets are curves of their own
		if _, ok := byOpt[l]; !ok {
			opts = append(opts, l)
		}
		byOpt[l] = append(byOpt[l], r)
		longest = max(longest, len(r.StepLog))
	}
	window := max(1, longest/50)
	specs := []struct {
		name, xl, yl string
		set          curveSet
		isLoss       bool
	}{
		{"loss_vs_steps", "step", "training loss (moving average)", lossBy(false, window), true},
		{"acc_vs_steps", "step", "test accuracy (%)", accBy(false), false},
		{"loss_vs_wall", "training time (s)", "training loss (moving average)", lossBy(true, window), true},
		{"acc_vs_wall", "training time (s)", "test accuracy (%)", accBy(true), false},
		{"val_loss_vs_steps", "step", "test (validation) loss", testLossBy(false), true},
		{"val_loss_vs_wall", "training time (s)", "test (validation) loss", testLossBy(true), true},
	}
	for _, sp := range specs {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = sp.xl
		p.Y.Label.Text = sp.yl
		isLoss := sp.isLoss
		p.Legend.Top = isLoss // accuracy rises to the top right, the loss falls from it
		p.Legend.Left = false
		p.Add(plotter.NewGrid())
		variant := map[string]int{}
		for i, name := range opts {
			opt := byOpt[name][0].Spec.Optimizer
			k := variant[opt]
			variant[opt]++
			var xs, ys [][]float64
			for _, r := range byOpt[name] {
				x, y := sp.set(r)
				xs, ys = append(xs, x), append(ys, y)
			}
			b := makeBand(xs, ys)
			if len(b.x) == 0 {
				continue
			}
			c := optimizerColor(opt, i)
			if err := addBand(p, b, c); err != nil {
				return fmt.Errorf("compare: plot %s, %s: %w", sp.name, name, err)
			}
			line, err := plotter.NewLine(xy(b.x, b.mean))
			if err != nil {
				return fmt.Errorf("compare: plot %s, %s: %w", sp.name, name, err)
			}
			line.Color = c
			line.Width = vg.Points(1.5)
			if k > 0 { // a second configuration of one optimizer: dashed
				line.Dashes = []vg.Length{vg.Points(2 + 2*float64(k)), vg.Points(2)}
			}
			if len(b.x) == 1 {
				sc, err := plotter.NewScatter(xy(b.x, b.mean))
				if err != nil {
					return fmt.Errorf("compare: plot %s, %s: %w", sp.name, name, err)
				}
				sc.Color = c
				sc.Shape = draw.CircleGlyph{}
				p.Add(sc)
			}
			p.Add(line)
			p.Legend.Add(fmt.Sprintf("%s (mean of %d seeds)", name, len(xs)), line)
		}
		if err := addBandKey(p); err != nil {
			return fmt.Errorf("compare: plot %s: %w", sp.name, err)
		}
		switch {
		case isLoss && strings.HasPrefix(sp.name, "val_"):
			// Evaluations start after some training: fit the axis to the
			// curves (Add has widened it to the data), capped like below.
			p.Y.Max = math.Min(p.Y.Max, 1.5*startLoss(results))
		case isLoss:
			// A diverged run's loss would set the scale: cap the axis at
			// 1.5× the largest loss at initialisation (lines are clipped to it).
			// Set after Add, which widens the axes to the data.
			p.Y.Min, p.Y.Max = 0, 1.5*startLoss(results)
		}
		if err := savePlot(p, dir, sp.name); err != nil {
			return err
		}
	}
	return nil
}

// savePlot writes p as dir/name.png and dir/name.svg.
func savePlot(p *plot.Plot, dir, name string) error {
	for _, format := range []string{"png", "svg"} {
		wt, err := p.WriterTo(8*vg.Inch, 5*vg.Inch, format)
		if err != nil {
			return fmt.Errorf("compare: plot %s.%s: %w", name, format, err)
		}
		path := filepath.Join(dir, name+"."+format)
		if err := WriteFile(path, func(w io.Writer) error { _, err := wt.WriteTo(w); return err }); err != nil {
			return fmt.Errorf("compare: %w", err)
		}
	}
	return nil
}

// addBandKey adds the legend entry that says what the shaded bands are.
func addBandKey(p *plot.Plot) error {
	key, err := plotter.NewPolygon(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 0}, {X: 1, Y: 1}})
	if err != nil {
		return err
	}
	key.Color = color.NRGBA{R: 128, G: 128, B: 128, A: 60}
	key.LineStyle.Width = 0
	p.Legend.Add("shaded: min–max over seeds", key) // in the legend only, not added to the plot
	return nil
}

// addBand adds the min–max polygon of b in a translucent c.
func addBand(p *plot.Plot, b band, c color.Color) error {
	n := len(b.x)
	if n < 2 {
		return nil
	}
	pts := make(plotter.XYs, 0, 2*n)
	for i := 0; i < n; i++ {
		pts = append(pts, plotter.XY{X: b.x[i], Y: b.hi[i]})
	}
	for i := n - 1; i >= 0; i-- {
		pts = append(pts, plotter.XY{X: b.x[i], Y: b.lo[i]})
	}
	poly, err := plotter.NewPolygon(pts)
	if err != nil {
		return err
	}
	r, g, bl, _ := c.RGBA()
	poly.Color = color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(bl >> 8), A: 60}
	poly.LineStyle.Width = 0
	p.Add(poly)
	return nil
}

func xy(x, y []float64) plotter.XYs {
	pts := make(plotter.XYs, len(x))
	for i := range x {
		pts[i] = plotter.XY{X: x[i], Y: y[i]}
	}
	return pts
}

// startLoss returns the largest first-step training loss of the runs (the
// loss at initialisation, before any update; at least 1e-3).
func startLoss(results []*RunResult) float64 {
	m := 1e-3
	for _, r := range results {
		if r == nil || len(r.StepLog) == 0 {
			continue
		}
		if v := r.StepLog[0].Loss; v > m && !math.IsInf(v, 0) {
			m = v
		}
	}
	return m
}

// palette returns the i-th of nine well-separated colours: the
// colour-blind-safe Okabe–Ito set without its yellow (too faint on white),
// then a dark grey and a brown.
func palette(i int) color.Color {
	cs := [...]uint32{0x000000, 0xe69f00, 0x56b4e9, 0x009e73, 0x0072b2, 0xd55e00, 0xcc79a7, 0x666666, 0x8c510a}
	c := cs[i%len(cs)]
	return color.NRGBA{R: uint8(c >> 16), G: uint8(c >> 8), B: uint8(c), A: 255}
}

// optimizerColor returns the colour of curvopt's optimizer name, its own
// palette colour, the same in every plot of every study; another name gets
// the palette colour after them by its position i among the plot's series.
func optimizerColor(name string, i int) color.Color {
	k := 7 + i
	switch name {
	case "sgd":
		k = 0
	case "adam":
		k = 1
	case "mfac":
		k = 2
	case "adahessian":
		k = 3
	case "adamw":
		k = 4
	case "sophiag":
		k = 5
	case "sophiah":
		k = 6
	}
	return palette(k)
}
