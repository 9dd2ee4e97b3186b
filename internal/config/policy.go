package config

import "time"

// PolicyConfig is where the policy lives and how the gateway runs it. It is inlined
// into Config, so its two keys sit at the top level of vigil.yaml:
//
//	policy: policy.yaml
//	policy_options:
//	  shadow: candidate.yaml
//	  watch_interval: 2s
//	  usage_flush_interval: 1s
type PolicyConfig struct {
	// Policy is the policy file (see the "Policy format" in DESIGN.md and
	// examples/policy.yaml), relative to this configuration file. It is compiled at
	// start, and a policy that does not compile stops the start with every problem
	// listed. Empty means the built-in policy: allow everything (usage is still
	// counted and every decision recorded).
	Policy string `yaml:"policy"`

	// PolicyOptions tune how the policy is run.
	PolicyOptions PolicyOptions `yaml:"policy_options"`
}

// PolicyOptions tune how the policy is run.
type PolicyOptions struct {
	// Shadow is a candidate policy file evaluated beside the live one on every action,
	// without effect: the differences are counted and listed at GET
	// /api/policy/shadow. Empty means no shadow mode. Like Policy, it must compile.
	Shadow string `yaml:"shadow"`

	// WatchInterval is how often the policy file is checked for changes; a changed
	// file is acted on once it has stayed the same for one interval (so a file caught
	// half-written is never activated): if it compiles it becomes the live policy (and
	// is recorded in the ledger), if not it is reported and ignored. Default 2s; at
	// least 100ms; a negative value turns watching off (then POST /api/policy is the
	// only way to reload).
	WatchInterval time.Duration `yaml:"watch_interval"`

	// UsageFlushInterval is how often each replica writes its usage counts (calls,
	// tokens, cost) to the database and reads the other replicas'. It bounds how long
	// one replica's traffic takes to count toward limits on another. Default 1s;
	// between 100ms and 1m.
	UsageFlushInterval time.Duration `yaml:"usage_flush_interval"`
}

// Policy option defaults.
const (
	DefaultPolicyWatchInterval      = 2 * time.Second
	DefaultPolicyUsageFlushInterval = time.Second
)

// Watch returns the watch interval to use, and false when watching is off.
func (o PolicyOptions) Watch() (time.Duration, bool) {
	switch {
	case o.WatchInterval < 0:
		return 0, false
	case o.WatchInterval == 0:
		return DefaultPolicyWatchInterval, true
	}
	return o.WatchInterval, true
}

// Flush returns the usage flush interval to use.
func (o PolicyOptions) Flush() time.Duration {
	if o.UsageFlushInterval == 0 {
		return DefaultPolicyUsageFlushInterval
	}
	return o.UsageFlushInterval
}

// validate adds the policy settings' problems to errs.
func (p *PolicyConfig) validate(errs *FieldErrors) {
	o := p.PolicyOptions
	if o.Shadow != "" && o.Shadow == p.Policy {
		errs.add("policy_options.shadow", "is the live policy itself; name a candidate file")
	}
	if o.Shadow != "" && p.Policy == "" {
		errs.add("policy_options.shadow", "needs a live policy file (policy) to compare with")
	}
	if o.WatchInterval > 0 && o.WatchInterval < 100*time.Millisecond {
		errs.add("policy_options.watch_interval", "must be at least 100ms (or negative to turn watching off)")
	}
	if f := o.UsageFlushInterval; f != 0 && (f < 100*time.Millisecond || f > time.Minute) {
		errs.add("policy_options.usage_flush_interval", "must be between 100ms and 1m")
	}
}
