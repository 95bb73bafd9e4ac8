package jobs_test
