package data

import (
	"fmt"
	"strconv"
	"strings"
)

// Dataset kinds understood by Load.
const (
	KindSynthetic    = "synthetic"
	KindCIFAR10      = "cifar10"
	KindCIFAR100     = "cifar100"
	KindMNIST        = "mnist"
	KindFashionMNIST = "fashion-mnist"
)

// Spec selects a dataset for LoadSpec.
type Spec struct {
	// Kind is one of the Kind constants; empty means KindSynthetic.
	Kind string
	// Dir is the data directory (required for cifar10, cifar100 and mnist;
	// optional for fashion-mnist, default FashionMNISTDir).
	Dir string
	// Coarse selects CIFAR-100's 20 coarse labels instead of the 100 fine
	// ones.
	Coarse bool
	// Synthetic configures the synthetic dataset.
	Synthetic SyntheticConfig
	// Memory reports the memory available for the data, which the loaders
	// check the files' claims against before allocating (nil:
	// MemAvailable from /proc/meminfo).
	Memory func() (int64, error) `json:"-"`
	// File is the UTF-8 text file of KindText; empty means DefaultCorpus.
	File string
	// Context is KindText's window length in characters (default 64).
	Context int
}

// ParseSpec parses a command-line dataset description:
//
//	synthetic [train=N] [test=N] [seed=S] [noise=X]
//	cifar10 DIR
//	cifar100 DIR [coarse]      (also: cifar100-coarse DIR)
//	fashion-mnist [DIR]
//	mnist DIR
//	text [FILE] [context=N]    (FILE: a UTF-8 text; default the built-in corpus)
//
// Fields are separated by white space; the empty string means synthetic.
func ParseSpec(s string) (Spec, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return Spec{Kind: KindSynthetic}, nil
	}
	sp := Spec{Kind: strings.ToLower(f[0])}
	args := f[1:]
	bad := func(format string, a ...any) (Spec, error) {
		return Spec{}, fmt.Errorf("data: dataset spec %q: %s", s, fmt.Sprintf(format, a...))
	}
	switch sp.Kind {
	case KindSynthetic:
		for _, a := range args {
			k, v, ok := strings.Cut(a, "=")
			if !ok {
				return bad("option %q is not key=value", a)
			}
			var err error
			switch k {
			case "train":
				sp.Synthetic.Train, err = strconv.Atoi(v)
			case "test":
				sp.Synthetic.Test, err = strconv.Atoi(v)
			case "seed":
				sp.Synthetic.Seed, err = strconv.ParseUint(v, 10, 64)
			case "noise":
				sp.Synthetic.Noise, err = strconv.ParseFloat(v, 64)
			default:
				return bad("unknown synthetic option %q (want train, test, seed or noise)", k)
			}
			if err != nil {
				return bad("option %s: %v", k, err)
			}
		}
	case "cifar100-coarse":
		sp.Kind, sp.Coarse = KindCIFAR100, true
		if len(args) != 1 {
			return bad("want cifar100-coarse DIR")
		}
		sp.Dir = args[0]
	case KindCIFAR100:
		switch {
		case len(args) == 1:
		case len(args) == 2 && args[1] == "coarse":
			sp.Coarse = true
		default:
			return bad("want cifar100 DIR [coarse]")
		}
		sp.Dir = args[0]
	case KindCIFAR10, KindMNIST:
		if len(args) != 1 {
			return bad("want %s DIR", sp.Kind)
		}
		sp.Dir = args[0]
	case KindFashionMNIST:
		if len(args) > 1 {
			return bad("want fashion-mnist [DIR]")
		}
		if len(args) == 1 {
			sp.Dir = args[0]
		}
	case KindText:
		for _, a := range args {
			if v, ok := strings.CutPrefix(a, "context="); ok {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 {
					return bad("context %q: want a positive integer", v)
				}
				sp.Context = n
				continue
			}
			if sp.File != "" {
				return bad("want text [FILE] [context=N]")
			}
			sp.File = a
		}
	default:
		return bad("unknown dataset %q (want synthetic, cifar10, cifar100, fashion-mnist, mnist or text)", f[0])
	}
	return sp, nil
}

// Load parses spec with ParseSpec and loads the train and test splits.
func Load(spec string) (train, test *Dataset, err error) {
	sp, err := ParseSpec(spec)
	if err != nil {
		return nil, nil, err
	}
	return LoadSpec(sp)
}

// LoadSpec loads the train and test splits that sp describes. The files'
// sizes and headers are checked, and their claims against the available
// memory, before anything large is allocated. Both splits are validated
// before they are returned: an empty split, or a test split whose images
// differ in shape from the training split's, is an error naming the files.
func LoadSpec(sp Spec) (train, test *Dataset, err error) {
	switch sp.Kind {
	case "", KindSynthetic:
		train, test, err = synthetic(sp.Synthetic, sp.Memory)
	case KindCIFAR10:
		train, test, err = loadCIFAR10(sp.Dir, sp.Memory)
	case KindCIFAR100:
		train, test, err = loadCIFAR100(sp.Dir, sp.Coarse, sp.Memory)
	case KindMNIST:
		if sp.Dir == "" {
			return nil, nil, fmt.Errorf("data: mnist needs a directory")
		}
		train, test, err = loadMNIST(KindMNIST, sp.Dir, sp.Memory)
	case KindFashionMNIST:
		train, test, err = loadMNIST(KindFashionMNIST, sp.Dir, sp.Memory)
	case KindText:
		train, test, err = loadTextSpec(sp)
	default:
		return nil, nil, fmt.Errorf("data: unknown dataset kind %q", sp.Kind)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := CheckSplits(train, test); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// CheckSplits validates a training and a test split and checks them
// against each other: both non-empty, with images of one shape and labels
// within the training split's classes.
func CheckSplits(train, test *Dataset) error {
	for _, d := range []*Dataset{train, test} {
		if err := d.Validate(); err != nil {
			return err
		}
		if d.Len() == 0 {
			return fmt.Errorf("data: dataset %q is empty", d.Name)
		}
	}
	if train.C != test.C || train.H != test.H || train.W != test.W {
		return fmt.Errorf("data: the test split %q has %dx%dx%d images but the training split %q has %dx%dx%d",
			test.Name, test.C, test.H, test.W, train.Name, train.C, train.H, train.W)
	}
	if test.Classes > train.Classes {
		return fmt.Errorf("data: the test split %q has %d classes but the training split %q has %d",
			test.Name, test.Classes, train.Name, train.Classes)
	}
	return nil
}
