package compare

import (
	"fmt"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// SweepPlotName is the stem of the plot WriteSweepPlot writes.
const SweepPlotName = "sweep_val_loss_vs_lr"

// WriteSweepPlot writes dir/sweep_val_loss_vs_lr.{png,svg}: each swept
// configuration's final validation loss against its learning rate (log
// scale), one line per optimizer (per optimizer and knob setting, see
// SweepEntry.Label) through the mean over sweep seeds, with min–max error
// bars where there is more than one seed, the chosen rate ringed and
// diverged rates drawn as a cross at the top of the axis. Nothing is
// written for an empty sweep.
func WriteSweepPlot(dir, title string, sweep []SweepEntry, chosen map[string]float64) error {
	if len(sweep) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = title + ": learning-rate sweep"
	p.X.Label.Text = "peak learning rate"
	p.Y.Label.Text = "final validation loss (mean over sweep seeds; bars: min–max)"
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	var labels []string
	byLabel := map[string][]SweepEntry{}
	finiteMax := math.Inf(-1)
	for _, e := range sweep {
		l := e.Label()
		if _, ok := byLabel[l]; !ok {
			labels = append(labels, l)
		}
		byLabel[l] = append(byLabel[l], e)
		if e.Diverged == 0 && !math.IsInf(e.ValLoss.Max, 0) && !math.IsNaN(e.ValLoss.Max) {
			finiteMax = math.Max(finiteMax, e.ValLoss.Max)
		}
	}
	if math.IsInf(finiteMax, -1) {
		finiteMax = 1
	}
	var opts []string
	for _, e := range sweep {
		if !containsString(opts, e.Optimizer) {
			opts = append(opts, e.Optimizer)
		}
	}
	variant := map[string]int{}
	for _, l := range labels {
		es := byLabel[l]
		opt := es[0].Optimizer
		c := optimizerColor(opt, indexOf(opts, opt))
		k := variant[opt]
		variant[opt]++
		var pts, div plotter.XYs
		var errs plotter.YErrors
		var best plotter.XYs
		for _, e := range es {
			if e.Diverged > 0 || math.IsInf(e.ValLoss.Mean, 0) || math.IsNaN(e.ValLoss.Mean) {
				div = append(div, plotter.XY{X: e.LR, Y: 1.05 * finiteMax})
				continue
			}
			pts = append(pts, plotter.XY{X: e.LR, Y: e.ValLoss.Mean})
			errs = append(errs, struct{ Low, High float64 }{e.ValLoss.Mean - e.ValLoss.Min, e.ValLoss.Max - e.ValLoss.Mean})
			if lr, ok := chosen[opt]; ok && lr == e.LR && e.Chosen {
				best = append(best, plotter.XY{X: e.LR, Y: e.ValLoss.Mean})
			}
		}
		if len(pts) > 0 {
			line, scatter, err := plotter.NewLinePoints(pts)
			if err != nil {
				return fmt.Errorf("compare: sweep plot %s: %w", l, err)
			}
			line.Color, line.Width = c, vg.Points(1.5)
			if k > 0 {
				line.Dashes = []vg.Length{vg.Points(2 + 2*float64(k)), vg.Points(2)}
			}
			scatter.Color, scatter.Shape = c, seedGlyph(k)
			p.Add(line, scatter)
			p.Legend.Add(l, line, scatter)
			if len(es) > 0 && es[0].Runs > 1 {
				eb, err := plotter.NewYErrorBars(struct {
					plotter.XYer
					plotter.YErrorer
				}{pts, errs})
				if err != nil {
					return fmt.Errorf("compare: sweep plot %s: %w", l, err)
				}
				eb.Color = c
				p.Add(eb)
			}
		}
		if len(div) > 0 {
			sc, err := plotter.NewScatter(div)
			if err != nil {
				return fmt.Errorf("compare: sweep plot %s: %w", l, err)
			}
			sc.Color, sc.Shape, sc.Radius = c, draw.CrossGlyph{}, vg.Points(4)
			p.Add(sc)
		}
		if len(best) > 0 {
			ring, err := plotter.NewScatter(best)
			if err != nil {
				return fmt.Errorf("compare: sweep plot %s: %w", l, err)
			}
			ring.Color, ring.Shape, ring.Radius = c, draw.RingGlyph{}, vg.Points(7)
			p.Add(ring)
		}
	}
	p.Y.Max = math.Max(p.Y.Max, 1.1*finiteMax)
	return savePlot(p, dir, SweepPlotName)
}
