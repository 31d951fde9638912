package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/hessian"
	"github.com/curvopt/curvopt/nn"
	"gorgonia.org/tensor"
)

// newModel builds the run's model: cfg.DAG when set, else the layer list
// cfg.Model. For a token model (a DAG with Tokens > 0), ds must be a text
// window dataset (data.Text.Windows) of the model's context and vocabulary.
func newModel(cfg Config, rng *rand.Rand, ds *data.Dataset) (*nn.Model, bool, error) {
	if cfg.DAG == nil {
		ex, err := cfg.Model.ExampleShape()
		if err != nil {
			return nil, false, fmt.Errorf("train: model: %w", err)
		}
		if n := prod(ex); n != ds.ImageSize() {
			return nil, false, fmt.Errorf("train: the model takes inputs of shape %v (%d values) but %s has %dx%dx%d images (%d values)",
				ex, n, ds.Name, ds.C, ds.H, ds.W, ds.ImageSize())
		}
		m, err := nn.New(cfg.Model, cfg.Dtype, rng)
		if err != nil {
			return nil, false, fmt.Errorf("train: model: %w", err)
		}
		return m, false, nil
	}
	d := *cfg.DAG
	text := d.Tokens > 0
	switch {
	case text && (ds.C != 1 || ds.H != 1 || ds.W != d.InputShape[0]+1):
		return nil, false, fmt.Errorf("train: the model reads %d tokens per example but %s is not a text dataset of windows of %d characters (-data text)", d.InputShape[0], ds.Name, d.InputShape[0]+1)
	case text && ds.Classes > d.Tokens:
		return nil, false, fmt.Errorf("train: the model has a vocabulary of %d tokens but %s has %d", d.Tokens, ds.Name, ds.Classes)
	case !text && prod(d.InputShape) != ds.ImageSize():
		return nil, false, fmt.Errorf("train: the model takes inputs of shape %v but %s has %dx%dx%d images", d.InputShape, ds.Name, ds.C, ds.H, ds.W)
	}
	m, err := nn.NewDAG(d, cfg.Dtype, rng, cfg.Seed)
	if err != nil {
		return nil, false, fmt.Errorf("train: model: %w", err)
	}
	return m, text, nil
}

// textBatch turns an iterator batch of text windows into the model's input
// [B, T] and B·T next-character labels, in buffers reused per batch size.
type textBatch struct {
	x      map[int]*tensor.Dense
	labels []int
}

func (tb *textBatch) fill(ds *data.Dataset, b *data.Batch, dt tensor.Dtype) (*tensor.Dense, []int, error) {
	if tb.x == nil {
		tb.x = map[int]*tensor.Dense{}
	}
	n, t := len(b.Indices), ds.W-1
	x, ok := tb.x[n]
	if !ok {
		x = tensor.New(tensor.Of(dt), tensor.WithShape(n, t))
		tb.x[n] = x
	}
	if cap(tb.labels) < n*t {
		tb.labels = make([]int, n*t)
	}
	labels := tb.labels[:n*t]
	if err := data.TextBatch(ds, b.Indices, x, labels); err != nil {
		return nil, nil, err
	}
	return x, labels, nil
}

// EvaluateText returns the mean next-character cross-entropy (nats per
// character; perplexity is its exp, bits per character it over ln 2) and
// the next-character accuracy of a token model on a text window dataset.
func EvaluateText(eng *hessian.Engine, ds *data.Dataset, batch int, dt tensor.Dtype) (loss, acc float64, err error) {
	it, err := data.NewIterator(ds, data.IterConfig{BatchSize: batch, Dtype: dt})
	if err != nil {
		return 0, 0, err
	}
	var tb textBatch
	var sumLoss float64
	correct, n := 0, 0
	for it.Next() {
		x, labels, err := tb.fill(ds, it.Batch(), dt)
		if err != nil {
			return 0, 0, err
		}
		logits, err := eng.EvalLogits(x)
		if err != nil {
			return 0, 0, err
		}
		l, c := crossEntropy(logits, labels)
		sumLoss += l
		correct += c
		n += len(labels)
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("%s is empty", ds.Name)
	}
	return sumLoss / float64(n), float64(correct) / float64(n), nil
}

// Perplexity and BitsPerChar convert a mean cross-entropy in nats.
func Perplexity(loss float64) float64  { return math.Exp(loss) }
func BitsPerChar(loss float64) float64 { return loss / math.Ln2 }
