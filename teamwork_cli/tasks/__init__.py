"""Graphics tasks built on a `TeamPipeline`: each turns files' channels into the task's outputs."""
