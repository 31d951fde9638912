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
	default:
		return bad("unknown dataset %q (want synthetic, cifar10, cifar100, fashion-mnist or mnist)", f[0])
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

// LoadSpec loads the train and test splits that sp describes. Both are
// validated before they are returned.
func LoadSpec(sp Spec) (train, test *Dataset, err error) {
	switch sp.Kind {
	case "", KindSynthetic:
		train, test, err = Synthetic(sp.Synthetic)
	case KindCIFAR10:
		train, test, err = LoadCIFAR10(sp.Dir)
	case KindCIFAR100:
		train, test, err = LoadCIFAR100(sp.Dir, sp.Coarse)
	case KindMNIST:
		if sp.Dir == "" {
			return nil, nil, fmt.Errorf("data: mnist needs a directory")
		}
		train, test, err = LoadMNIST(KindMNIST, sp.Dir)
	case KindFashionMNIST:
		train, test, err = LoadMNIST(KindFashionMNIST, sp.Dir)
	case KindText:
		train, test, err = loadTextSpec(sp)
	default:
		return nil, nil, fmt.Errorf("data: unknown dataset kind %q", sp.Kind)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := train.Validate(); err != nil {
		return nil, nil, err
	}
	if err := test.Validate(); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}
