output "image_pipeline_arn" {
  description = "The Image Builder pipeline; `aws imagebuilder start-image-pipeline-execution --image-pipeline-arn <arn>` builds the first image without waiting for the schedule."
  value       = aws_imagebuilder_image_pipeline.this.arn
}

output "image_id_parameter_name" {
  description = "SSM parameter that holds the newest image's AMI ID after each build (the Windows example's image_id_parameter_name)."
  value       = local.image_id_parameter
}

output "root_volume_size_gib" {
  description = "The image's root volume size: the EC2 action's root_volume_size_gib must be at least this."
  value       = var.root_volume_size_gib
}

output "base_images" {
  description = "Images cached in the AMI."
  value       = var.base_images
}

output "mirror_repository_urls" {
  description = "ECR repositories the base images are mirrored to, by source image (empty unless mirror_to_ecr)."
  value       = { for path, image in local.mirrors : image => aws_ecr_repository.mirror[path].repository_url }
}
