{% import "sql/macros.sql" as m -%}
-- What cleaning geo_raw cannot parse (the cleaning summary).
{{ m::unparsed_timestamps(table="geo_raw", name="timestamp", column=q ~ "timestamp" ~ q) }}
