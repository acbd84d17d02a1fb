"""Models: specs, the zoo, Hugging Face loading, consent for code, layer inspection."""
