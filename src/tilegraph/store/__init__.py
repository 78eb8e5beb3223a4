"""DynamoDB tables and repositories; S3 and Parquet storage."""
