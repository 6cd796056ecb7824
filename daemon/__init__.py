"""The line-side inspection daemon: pipeline, capture and publishing. Never imports TensorFlow."""


def worth_logging(count: int) -> bool:
    """For an event that may repeat thousands of times: log its 1st, 10th, 100th and every
    1000th occurrence, so the journal shows it without being flooded."""
    return count in (1, 10, 100) or count % 1000 == 0
