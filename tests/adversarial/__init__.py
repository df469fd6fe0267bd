"""The adversarial suite: hostile callers, tampered stores, wrong hook answers, broken rules."""
