"""sale-graph: SALE strategy auctions as a LangGraph graph."""
