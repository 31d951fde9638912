package train

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/hessian"
	"github.com/curvopt/curvopt/nn"
	"gorgonia.org/tensor"
)

// newModel builds the run's model, cfg.Model. text reports a token model
// (a DAG with Tokens > 0), which
// trains on text window datasets (data.Text.Windows); checkInputs checks
// the datasets against the model.
func newModel(cfg Config, rng *rand.Rand) (m *nn.Model, text bool, err error) {
	m, err = nn.New(cfg.Model, cfg.Dtype, rng, cfg.Seed)
	text = cfg.Model.Tokens > 0
	if err != nil {
		return nil, false, fmt.Errorf("train: model: %w", err)
	}
	if text && cfg.Augment != (data.Augment{}) {
		return nil, false, errors.New("train: augmentation is for images, not text")
	}
	return m, text, nil
}

// checkTextData checks that ds is a text window dataset whose windows fit
// the token model d (its context plus the next character) and whose
// vocabulary fits d's.
func checkTextData(d nn.DAG, ds *data.Dataset) error {
	switch {
	case ds.C != 1 || ds.H != 1 || ds.W != d.InputShape[0]+1:
		return fmt.Errorf("train: the model reads %d tokens per example but %s is not a text dataset of windows of %d characters (-data text)", d.InputShape[0], ds.Name, d.InputShape[0]+1)
	case ds.Classes > d.Tokens:
		return fmt.Errorf("train: the model has a vocabulary of %d tokens but %s has %d", d.Tokens, ds.Name, ds.Classes)
	}
	return nil
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
	if err := checkEvalArgs("evaluate text", eng, ds); err != nil {
		return 0, 0, err
	}
	return evaluateText(eng, ds, batch, dt, nil)
}

// evaluateText is EvaluateText; p (nil: none) hears of its progress in
// sequences.
func evaluateText(eng *hessian.Engine, ds *data.Dataset, batch int, dt tensor.Dtype, p *evalProgress) (loss, acc float64, err error) {
	it, err := data.NewIterator(ds, data.IterConfig{BatchSize: batch, Dtype: dt})
	if err != nil {
		return 0, 0, err
	}
	var tb textBatch
	var sumLoss float64
	correct, n := 0, 0
	rows := 0
	for it.Next() {
		b := it.Batch()
		rows += len(b.Labels)
		x, labels, err := tb.fill(ds, b, dt)
		if err != nil {
			return 0, 0, err
		}
		l, c, err := eng.EvalLoss(x, labels)
		if err != nil {
			return 0, 0, err
		}
		sumLoss += l * float64(len(labels))
		correct += c
		n += len(labels)
		p.update(rows)
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("%s is empty", ds.Name)
	}
	return sumLoss / float64(n), float64(correct) / float64(n), nil
}

// Perplexity and BitsPerChar convert a mean cross-entropy in nats.
func Perplexity(loss float64) float64  { return math.Exp(loss) }
func BitsPerChar(loss float64) float64 { return loss / math.Ln2 }
