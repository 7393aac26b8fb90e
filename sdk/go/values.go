package aerofn

import "encoding/json"

// Values holds request headers or query parameters by name. The host may
// send each value as a string or as a list of strings; both decode, the way
// url.Values holds them.
type Values map[string][]string

// Get returns the first value for key, or "" when there is none.
func (v Values) Get(key string) string {
	if vs := v[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// UnmarshalJSON accepts {"k": "v"} and {"k": ["v1", "v2"]}; a number,
// boolean or other value becomes its JSON text and null an empty string.
func (v *Values) UnmarshalJSON(data []byte) error {
	data = data[skipSpace(data, 0):]
	if len(data) == 0 {
		return errUnexpectedEnd
	}
	vals, err := decodeValues(data)
	if err != nil {
		return err
	}
	*v = vals
	return nil
}

func decodeValues(raw []byte) (Values, error) {
	if raw[0] == 'n' {
		return nil, nil
	}
	out := make(Values)
	// Every name's values are capped windows of one array, instead of a
	// slice each: an append to one still copies, as to a slice of its own.
	all := make([]string, 0, 8)
	err := eachMember(raw, func(key string, val []byte) error {
		if val[0] != '[' {
			if val[0] == 'n' {
				out[key] = nil
			} else {
				all = append(all, valueText(val))
				out[key] = all[len(all)-1 : len(all) : len(all)]
			}
			return nil
		}
		start := len(all)
		err := eachElement(val, func(elem []byte) {
			all = append(all, valueText(elem))
		})
		out[key] = all[start:len(all):len(all)]
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// valueText is the text of a string, "" for null, and the JSON text of
// anything else.
func valueText(raw []byte) string {
	switch raw[0] {
	case '"':
		return unquote(raw)
	case 'n':
		return ""
	}
	return string(raw)
}

// MarshalJSON writes a single value as a string and several as a list,
// the shape the host is most likely to have sent.
func (v Values) MarshalJSON() ([]byte, error) {
	if v == nil {
		return []byte("null"), nil
	}
	m := make(map[string]any, len(v))
	for k, vs := range v {
		if len(vs) == 1 {
			m[k] = vs[0]
		} else {
			m[k] = vs
		}
	}
	return json.Marshal(m)
}
