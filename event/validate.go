package event

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compiled is Schema compiled once, with format assertions on (date-time).
var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("event.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("event.json")
})

// Validate checks one event's JSON body against Schema. The error says which
// rule failed. Consumers (`pipeline events`) and tests share this one check.
func Validate(body []byte) error {
	sch, err := compiled()
	if err != nil {
		return fmt.Errorf("event: compile schema: %w", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("event: not JSON: %w", err)
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("event: does not match the schema: %w", err)
	}
	return nil
}
