"""Read models in Binance's shapes (decimal strings), computed from the core's state: what the
native gateway's queries, the feed's queries and the HTTP API answer. They change nothing.

    positions   positionRisk, account
    orders      an order's state, open orders
    funding     premiumIndex, fundingRate history, indexInfo (the composite)
    tokens      tokenInfo, userLimit, spotAccount
"""
