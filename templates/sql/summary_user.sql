{% import "sql/macros.sql" as m -%}
-- What cleaning user_raw cannot parse (the cleaning summary).
{{ m::unparsed_timestamps(table="user_raw", name="date_joined", column="date_joined") }}
