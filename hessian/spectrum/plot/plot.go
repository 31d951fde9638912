// Package plot draws Hessian eigenvalue densities (hessian/spectrum's SLQ
// output) to PNG, SVG, PDF and other image files. It is kept apart from
// hessian/spectrum so that computing a spectrum, and training, does not
// pull in gonum/plot and its fonts.
package plot

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/curvopt/curvopt/hessian/spectrum"
	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Curve is one labelled density in a gplot.
type Curve struct {
	// Label is the legend entry ("" for none).
	Label string
	// Density is the curve to draw.
	Density *spectrum.Density
}

// PlotOptions configures [WriteDensityPlot].
type PlotOptions struct {
	// Title is the plot title.
	Title string
	// LogY draws the density on a logarithmic axis, as PyHessian's
	// density_plot (semilogy of density + 1e-7).
	LogY bool
	// Width and Height are the image size in inches; zero means 6 × 4.
	Width, Height float64
}

// logFloor is added to the density on a logarithmic axis, as PyHessian does.
const logFloor = 1e-7

// WriteDensityPlot draws the curves (eigenvalue on x, density on y) and
// writes the image to path, in the format given by its extension: .png,
// .svg, .pdf, .eps, .jpg/.jpeg or .tif/.tiff. The image is written to a
// temporary file in the same directory and renamed over path, so path never
// holds a partial file.
func WriteDensityPlot(path string, opt PlotOptions, curves ...Curve) error {
	format := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
	switch format {
	case "png", "svg", "pdf", "eps", "jpg", "jpeg", "tif", "tiff":
	default:
		return invalidf("plot: unsupported image format %q of %s", format, path)
	}
	if len(curves) == 0 {
		return invalidf("plot: no curves")
	}
	if opt.Width < 0 || opt.Height < 0 {
		return invalidf("plot: negative size %v × %v", opt.Width, opt.Height)
	}
	w, h := opt.Width, opt.Height
	if w == 0 {
		w = 6
	}
	if h == 0 {
		h = 4
	}
	p := gplot.New()
	p.Title.Text = opt.Title
	p.X.Label.Text = "Eigenvalue"
	p.Y.Label.Text = "Density (spectral)"
	if opt.LogY {
		p.Y.Scale = gplot.LogScale{}
		p.Y.Tick.Marker = powerTicks{}
	}
	p.Add(plotter.NewGrid())
	for i, c := range curves {
		if c.Density == nil || len(c.Density.X) == 0 || len(c.Density.X) != len(c.Density.Y) {
			return invalidf("plot: curve %d (%q) is empty or malformed", i, c.Label)
		}
		xy := make(plotter.XYs, len(c.Density.X))
		for j := range xy {
			y := c.Density.Y[j]
			if opt.LogY {
				y = math.Max(y, 0) + logFloor
			}
			xy[j] = plotter.XY{X: c.Density.X[j], Y: y}
		}
		line, err := plotter.NewLine(xy)
		if err != nil {
			return fmt.Errorf("spectrum: plot: curve %d: %w", i, err)
		}
		line.Color = curveColor(i)
		line.Width = vg.Points(1.2)
		p.Add(line)
		if c.Label != "" {
			p.Legend.Add(c.Label, line)
		}
	}
	p.Legend.Top = true
	wt, err := p.WriterTo(vg.Length(w)*vg.Inch, vg.Length(h)*vg.Inch, format)
	if err != nil {
		return fmt.Errorf("spectrum: plot: %w", err)
	}
	return writeAtomic(path, wt)
}

// curveColor returns the i-th colour of a fixed six-colour cycle.
func curveColor(i int) color.Color {
	palette := [...]color.RGBA{
		{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
		{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
		{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
		{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
		{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
		{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	}
	return palette[i%len(palette)]
}

// writeAtomic writes wt to a temporary file in path's directory, syncs it
// and renames it to path; on any error the temporary file is removed.
func writeAtomic(path string, wt io.WriterTo) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("spectrum: plot: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = wt.WriteTo(f); err != nil {
		return fmt.Errorf("spectrum: plot: writing %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("spectrum: plot: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("spectrum: plot: %w", err)
	}
	if err = os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("spectrum: plot: %w", err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("spectrum: plot: %w", err)
	}
	return nil
}

// powerTicks labels a logarithmic axis at the powers of ten as 1e-05, 0.01,
// 1, 100 (gplot.LogTicks prints 9.999999999999999e-05 for 1e-04).
type powerTicks struct{}

// Ticks returns a labelled tick at every power of ten in [lo, hi].
func (powerTicks) Ticks(lo, hi float64) []gplot.Tick {
	var ts []gplot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		v := math.Pow(10, e)
		if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
			continue
		}
		ts = append(ts, gplot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', 3, 64)})
	}
	return ts
}

// invalidf reports bad arguments, wrapping spectrum.ErrInvalid.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{spectrum.ErrInvalid}, args...)...)
}
