"""The agent runtime: model providers, built-in tools and the LangGraph runner."""
