from services.scoring.main import main

main()
