package pipeline

import (
	"bytes"
	_ "embed"
)

// reportSchema is the JSON Schema of Report's JSON encoding. A test
// checks it against real reports and against Report's fields, so it
// cannot fall behind them.
//
//go:embed report.schema.json
var reportSchema []byte

// ReportSchema returns the JSON Schema (draft 2020-12) of the build report
// kiln build --json prints (Report), for kiln schema --report: tools
// reading reports can validate them, and tell versions apart by
// schema_version, which the schema requires.
func ReportSchema() []byte { return bytes.Clone(reportSchema) }
