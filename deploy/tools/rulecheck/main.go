// Command rulecheck checks Prometheus alerting and recording rule files the way the
// Prometheus server loads them (model/rulefmt: structure, durations, templates, and every
// expression parsed by the PromQL parser). It exits 1 naming each problem.
//
//	rulecheck deploy/observability/alerts.yml
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: rulecheck FILE...")
		os.Exit(64)
	}
	failed := false
	for _, file := range os.Args[1:] {
		groups, errs := rulefmt.ParseFile(
			file, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.Default(),
		)
		for _, err := range errs {
			fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
			failed = true
		}
		if groups != nil {
			rules := 0
			for _, group := range groups.Groups {
				rules += len(group.Rules)
			}
			fmt.Printf("%s: %d groups, %d rules\n", file, len(groups.Groups), rules)
		}
	}
	if failed {
		os.Exit(1)
	}
}
