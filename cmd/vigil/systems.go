package main

import (
	"context"
	"flag"
	"fmt"
	"io"
)

func runSystems(ctx context.Context, env *Env, args []string) error {
	return dispatchAPI(ctx, env, "systems", "Manage the AI systems agents act for, through the admin API (needs VIGIL_TOKEN).", args,
		systemsCreate(), systemsList(), systemsGet(), systemsUpdate(), systemsSuspend(), systemsResume())
}

type systemOut struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Purpose   string `json:"purpose"`
	Owner     string `json:"owner"`
	Lifecycle string `json:"lifecycle"`
	Status    string `json:"status"`
	Complete  bool   `json:"complete"`
}

// systemFields are the flags systems create and update share; update sends them all
// and the API leaves the empty ones alone.
type systemFields struct{ purpose, owner, lifecycle string }

func (f *systemFields) register(fs *flag.FlagSet) {
	fs.StringVar(&f.purpose, "purpose", "", "what the system is for (intended use)")
	fs.StringVar(&f.owner, "owner", "", "the person or team accountable for the system")
	fs.StringVar(&f.lifecycle, "lifecycle", "", "design, development, verification, deployment, operation or retired (default operation)")
}

func (f *systemFields) body() map[string]string {
	return map[string]string{"purpose": f.purpose, "owner": f.owner, "lifecycle": f.lifecycle}
}

const systemFieldsUsage = "[--purpose TEXT] [--owner WHO] [--lifecycle STAGE] NAME"

func systemsCreate() apiCommand {
	var f systemFields
	return apiCommand{
		name:  "systems create",
		brief: "register an AI system",
		usage: systemFieldsUsage,
		help:  "Register an AI system (the unit of the ISO/IEC 42001 inventory that agents belong to).",
		flags: f.register,
		args:  one("system name"),
		request: func(in *invocation) (apiRequest, error) {
			body := f.body()
			body["name"] = in.args[0]
			return apiRequest{method: "POST", path: apiPath("systems"), body: body}, nil
		},
		show: decoded(showSystemRecord),
	}
}

func systemsUpdate() apiCommand {
	var f systemFields
	return apiCommand{
		name:  "systems update",
		brief: "set a system's purpose, owner or lifecycle stage",
		usage: systemFieldsUsage,
		help:  "Set a system's purpose, owner or lifecycle stage; flags not given are left alone.",
		flags: f.register,
		args:  one("system name"),
		request: func(in *invocation) (apiRequest, error) {
			return apiRequest{method: "PATCH", path: apiPath("systems", in.args[0]), body: f.body()}, nil
		},
		show: decoded(showSystemRecord),
	}
}

func showSystemRecord(w io.Writer, _ []string, s systemOut) {
	fmt.Fprintf(w, "System %s (id %s): lifecycle %s, %s.\n", s.Name, s.ID, s.Lifecycle, completeness(s.Complete))
}

func completeness(ok bool) string {
	if ok {
		return "record complete"
	}
	return "record incomplete (set --owner and --purpose)"
}

func systemsList() apiCommand {
	return apiCommand{
		name:  "systems list",
		brief: "list AI systems",
		help:  "List AI systems.",
		request: func(*invocation) (apiRequest, error) {
			return apiRequest{method: "GET", path: apiPath("systems")}, nil
		},
		show: decoded(func(w io.Writer, _ []string, out struct{ Systems []systemOut }) {
			rows := [][]string{}
			for _, s := range out.Systems {
				complete := "yes"
				if !s.Complete {
					complete = "no"
				}
				rows = append(rows, []string{s.Name, s.Status, s.Lifecycle, s.Owner, complete, s.ID})
			}
			table(w, []string{"NAME", "STATUS", "LIFECYCLE", "OWNER", "COMPLETE", "ID"}, rows)
		}),
	}
}

func systemsGet() apiCommand {
	return apiCommand{
		name:  "systems get",
		brief: "show a system and its agents",
		usage: "NAME|ID",
		help:  "Show an AI system and its agents as JSON.",
		args:  one("system name or id"),
		request: func(in *invocation) (apiRequest, error) {
			return apiRequest{method: "GET", path: apiPath("systems", in.args[0])}, nil
		},
	}
}

func systemsSuspend() apiCommand {
	var reason string
	return apiCommand{
		name:  "systems suspend",
		brief: "kill switch for every agent of a system",
		usage: "--reason TEXT NAME|ID",
		help:  "Suspend every agent of an AI system at once (kill switch), with a reason recorded in the ledger.",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&reason, "reason", "", "why (required; shown to the agents and recorded)")
		},
		args: one("system name or id"),
		request: func(in *invocation) (apiRequest, error) {
			return apiRequest{method: "POST", path: apiPath("systems", in.args[0], "suspend"), body: map[string]string{"reason": reason}}, nil
		},
		show: decoded(showSystemStatus),
	}
}

func systemsResume() apiCommand {
	return apiCommand{
		name:  "systems resume",
		brief: "let a suspended system's agents act again",
		usage: "NAME|ID",
		help:  "Resume a suspended AI system.",
		args:  one("system name or id"),
		request: func(in *invocation) (apiRequest, error) {
			return apiRequest{method: "POST", path: apiPath("systems", in.args[0], "resume")}, nil
		},
		show: decoded(showSystemStatus),
	}
}

func showSystemStatus(w io.Writer, _ []string, s systemOut) {
	fmt.Fprintf(w, "System %s is %s.\n", s.Name, s.Status)
}
