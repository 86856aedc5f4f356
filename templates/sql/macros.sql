{#- Shared SQL fragments. Written in the subset of SQL that DataFusion and
    Spark SQL both accept, so the cleaning and the queries have one source. -#}

{% macro year_of(ts) -%}
CAST(EXTRACT(YEAR FROM {{ ts }}) AS INT)
{%- endmacro year_of %}

{#- SPEC 5 age groups, bounds inclusive; under 18 has no group. -#}
{% macro age_group(age) -%}
CASE
    WHEN {{ age }} BETWEEN 18 AND 24 THEN '18-24'
    WHEN {{ age }} BETWEEN 25 AND 35 THEN '25-35'
    WHEN {{ age }} BETWEEN 36 AND 50 THEN '36-50'
    WHEN {{ age }} > 50 THEN '+50'
  END
{%- endmacro age_group %}

{#- Expects a CTE `base(<group>, <item>)`. Keeps every rank-1 row (ties kept). -#}
{% macro most_popular(group, item, count) -%}
, counted AS (
  SELECT {{ group }}, {{ item }}, COUNT(*) AS {{ count }}
  FROM base
  GROUP BY {{ group }}, {{ item }}
), ranked AS (
  SELECT {{ group }}, {{ item }}, {{ count }},
         RANK() OVER (PARTITION BY {{ group }} ORDER BY {{ count }} DESC) AS rk
  FROM counted
)
SELECT {{ group }}, {{ item }}, {{ count }}
FROM ranked
WHERE rk = 1
ORDER BY {{ group }} NULLS LAST, {{ item }} NULLS LAST
{%- endmacro most_popular %}

{#- Expects a CTE `base(<keys>, <value>)` with non-null values. The lower
    median: the value at position ceil(n/2), which is what Spark's
    percentile_approx(x, 0.5) returns on groups it holds exactly. Integer
    arithmetic only, because `/` means different things in the two engines. -#}
{% macro lower_median(keys, value, out) -%}
, ranked AS (
  SELECT {{ keys }}, {{ value }},
         ROW_NUMBER() OVER (PARTITION BY {{ keys }} ORDER BY {{ value }}) AS rn,
         COUNT(*) OVER (PARTITION BY {{ keys }}) AS n
  FROM base
)
SELECT {{ keys }}, {{ value }} AS {{ out }}
FROM ranked
WHERE 2 * rn >= n AND 2 * rn < n + 2
ORDER BY {{ keys }}
{%- endmacro lower_median %}

{#- SPEC 4: a placeholder (or the empty string) becomes null. -#}
{% macro nulled(column, values) -%}
{%- if values | length == 0 -%}
NULLIF({{ column }}, '')
{%- else -%}
CASE WHEN {{ column }} IN (''{% for v in values %}, '{{ v }}'{% endfor %}) THEN NULL ELSE {{ column }} END
{%- endif -%}
{%- endmacro nulled %}

{#- SPEC 4 pin step 3: `k` = x1,000, `M` = x1,000,000, a decimal mantissa
    honoured; null when the text is no such number. -#}
{% macro follower_count_int(column) -%}
CASE
    WHEN {{ column }} LIKE '%k'
      THEN TRY_CAST(ROUND(TRY_CAST(substr({{ column }}, 1, length({{ column }}) - 1) AS DOUBLE) * 1000) AS BIGINT)
    WHEN {{ column }} LIKE '%M'
      THEN TRY_CAST(ROUND(TRY_CAST(substr({{ column }}, 1, length({{ column }}) - 1) AS DOUBLE) * 1000000) AS BIGINT)
    ELSE TRY_CAST({{ column }} AS BIGINT)
  END
{%- endmacro follower_count_int %}

{#- A datetime as the emulators write it: `YYYY-MM-DD HH:MM:SS`, ISO with
    `T`, fractional seconds, or `YYYY:MM:DD HH:MM:SS` (colons in the date,
    turned into dashes first); null when it is none of these. -#}
{% macro parse_timestamp(ts) -%}
TRY_CAST(CASE WHEN {{ ts }} LIKE '____:__:__%' THEN replace(substr({{ ts }}, 1, 10), ':', '-') || substr({{ ts }}, 11) ELSE {{ ts }} END AS TIMESTAMP)
{%- endmacro parse_timestamp %}

{#- Summary columns for values of `column` that are present but do not
    parse (`parsed` is null): how many, and the smallest as the example. The
    names are `unparsed:<name>` and `example:<name>`. Each row counts as
    many times as its text occurred (`occurrences`, the column the batch
    job's decoder adds). -#}
{% macro unparsed(q, name, column, present, parsed, occurrences) -%}
SUM(CASE WHEN {{ present }} IS NOT NULL AND {{ parsed }} IS NULL THEN {{ occurrences }} ELSE 0 END) AS {{ q }}unparsed:{{ name }}{{ q }},
  MIN(CASE WHEN {{ present }} IS NOT NULL AND {{ parsed }} IS NULL THEN {{ column }} END) AS {{ q }}example:{{ name }}{{ q }}
{%- endmacro unparsed %}
