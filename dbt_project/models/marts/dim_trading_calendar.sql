-- Every calendar day per market and whether it is a trading day (exchange_calendars).
with calendar as (

    select * from {{ ref('stg_trading_calendar') }}

)

select
    market,
    calendar_date,
    is_trading_day
from calendar
