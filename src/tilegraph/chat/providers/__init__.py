"""Chat providers: the built-in summary answerer, OpenAI-compatible servers, Vertex AI."""
