-- Filing facts as reported: one row per filing of a fact. Discrete quarters and TTM are
-- derived in the int_fundamentals_* models (point in time, from filed_date).
with source as (

    select * from {{ source('raw', 'fundamentals') }}

),

renamed as (

    select
        cast(security_id as string) as security_id,
        cast(metric as string) as metric,
        cast(period_start as date) as period_start,
        cast(period_end as date) as period_end,
        cast(fiscal_year as bigint) as fiscal_year,
        cast(fiscal_period as string) as fiscal_period,
        cast(filed_date as date) as filed_date,
        cast(value_basis as string) as value_basis,
        cast(value as double) as value,
        cast(unit as string) as unit,
        cast(form as string) as form,
        cast(accession as string) as accession,
        cast(source as string) as source
    from source

)

select * from renamed
