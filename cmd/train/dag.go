package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/train"
)

// gptContext is gpt-tiny's context: the window length of -data text.
const gptContext = 64

// dagModel sets o.cfg.Model for resnetN (He et al.'s CIFAR ResNet of depth
// N, e.g. resnet8, resnet20) on image data, and gpt-tiny (nn.GPT's
// defaults) on -data text, whose corpus it loads here because the
// vocabulary sizes the model. ok is false for other -model values (mlp,
// cnn and files: imageModel).
func (o *options) dagModel(c, size, classes int) (ok bool, err error) {
	switch {
	case o.model == "gpt-tiny":
		if o.dataKind != data.KindText {
			return true, fmt.Errorf("-model gpt-tiny trains on text: add -data text (and -data-file PATH, or the built-in corpus)")
		}
		tr, te, err := data.LoadSpec(o.cfg.Data)
		if err != nil {
			return true, fmt.Errorf("-data text: %w", err)
		}
		d, err := nn.GPT(nn.GPTConfig{Vocab: tr.Classes, Context: gptContext})
		if err != nil {
			return true, err
		}
		o.cfg.Model, o.cfg.Train, o.cfg.Test = d, tr, te
		o.cfg.Normalize = false
		return true, nil
	case strings.HasPrefix(o.model, "resnet"):
		depth, err := strconv.Atoi(strings.TrimPrefix(o.model, "resnet"))
		if err != nil {
			return true, fmt.Errorf("-model %q: want resnetN with N = 6n+2 (resnet8, resnet20, …)", o.model)
		}
		if o.dataKind == data.KindText {
			return true, fmt.Errorf("-model %s is an image model; -data text needs -model gpt-tiny", o.model)
		}
		d, err := nn.ResNet(depth, c, size, classes)
		if err != nil {
			return true, fmt.Errorf("-model %s: %w", o.model, err)
		}
		o.cfg.Model = d
		return true, nil
	case o.dataKind == data.KindText:
		return true, fmt.Errorf("-data text needs -model gpt-tiny")
	}
	return false, nil
}

// reportValidation prints the final validation metrics: loss and accuracy, and for
// text the perplexity and bits per character.
func reportValidation(w io.Writer, res *train.Result, text bool) {
	if text {
		fmt.Fprintf(w, "validation: loss %.4f nats/char, perplexity %.3f, %.4f bits/char, next-character accuracy %.4f\n",
			res.FinalTestLoss, train.Perplexity(res.FinalTestLoss), train.BitsPerChar(res.FinalTestLoss), res.FinalTestAcc)
		return
	}
	fmt.Fprintf(w, "validation: loss %.4f, accuracy %.4f\n", res.FinalTestLoss, res.FinalTestAcc)
}
